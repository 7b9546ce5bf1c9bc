package sqlrow

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// The flow-control parts of storage.Tx and storage.Reader (storage.ScheduleTx,
// storage.ScheduleReader): an operation's pause and start_rate state, running jobs
// by concurrency key, the fair keys of queued jobs and the queued jobs of one.
// Their statements are rendered where they run.

const (
	qOperationFlow = `SELECT paused, start_tat, updated_at FROM operation_flow WHERE operation = ?`
	qSetPaused     = `INSERT INTO operation_flow (operation, paused, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (operation) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at`
	// qLockStartTAT's "update" on a conflict writes the value back: it locks
	// the row (waiting for a concurrent holder) and returns the latest
	// committed value, as Setting does.
	qLockStartTAT = `INSERT INTO operation_flow (operation) VALUES (?)
		ON CONFLICT (operation) DO UPDATE SET start_tat = operation_flow.start_tat RETURNING start_tat`
	qPutStartTAT  = `UPDATE operation_flow SET start_tat = ? WHERE operation = ?`
	qRunningByKey = `SELECT concurrency_key, count(*) FROM jobs WHERE status = 'running' AND concurrency_key <> '' AND operation = ?
		GROUP BY concurrency_key`
	qOperationFlows  = `SELECT operation, paused, start_tat, updated_at FROM operation_flow ORDER BY operation`
	qRunningCounts   = `SELECT operation, count(*) FROM jobs WHERE status = 'running' GROUP BY operation`
	flowQueuedOrder  = ` ORDER BY priority DESC, run_at, id LIMIT ?`
	flowFairKeysBody = `WITH RECURSIVE k(fk) AS (
		SELECT (SELECT fair_key FROM jobs WHERE status = 'queued' AND fair_key <> '' AND %[1]s ORDER BY fair_key LIMIT 1)
		UNION ALL
		SELECT (SELECT fair_key FROM jobs WHERE status = 'queued' AND fair_key <> '' AND %[1]s AND fair_key > k.fk
			ORDER BY fair_key LIMIT 1)
		FROM k WHERE k.fk IS NOT NULL)
		SELECT fk FROM k WHERE fk IS NOT NULL LIMIT ?`
)

// ScheduleQueries are the flow statements every lease may run, rendered for one
// dialect once (SQLite's driver prepares them).
type ScheduleQueries struct {
	OperationFlow, SetPaused, LockStartTAT, PutStartTAT, RunningByKey string
}

var sqliteSchedule, postgresSchedule = SQLite.renderSchedule(), PostgreSQL.renderSchedule()

func (d Dialect) renderSchedule() ScheduleQueries {
	return ScheduleQueries{OperationFlow: d.Render(qOperationFlow), SetPaused: d.Render(qSetPaused),
		LockStartTAT: d.Render(qLockStartTAT), PutStartTAT: d.Render(qPutStartTAT), RunningByKey: d.Render(qRunningByKey)}
}

// ScheduleQueries returns the dialect's flow statements.
func (d Dialect) ScheduleQueries() *ScheduleQueries {
	if d.numbered {
		return &postgresSchedule
	}
	return &sqliteSchedule
}

// OperationFlow reads an operation's state, without a lock.
func (t *Tx) OperationFlow(operation string) (storage.OperationFlow, error) {
	f := storage.OperationFlow{Operation: operation}
	var paused, tat, updated int64
	err := t.Conn.QueryRow(t.Dialect.ScheduleQueries().OperationFlow, operation).Scan(&paused, &tat, &updated)
	if err = t.Interpret(err); errors.Is(err, storage.ErrNotFound) {
		return f, nil
	} else if err != nil {
		return f, fmt.Errorf("operation flow %s: %w", operation, err)
	}
	f.Paused, f.StartTAT, f.UpdatedAt = paused != 0, timeOrZero(tat), timeOrZero(updated)
	return f, nil
}

// SetPaused pauses or resumes an operation.
func (t *Tx) SetPaused(operation string, paused bool, now time.Time) error {
	p := 0
	if paused {
		p = 1
	}
	return t.exec("set paused", t.Dialect.ScheduleQueries().SetPaused, operation, p, storage.Micros(now))
}

// LockStartTAT reads an operation's start TAT and holds its row.
func (t *Tx) LockStartTAT(operation string) (time.Time, error) {
	var tat int64
	if err := t.Conn.ExecRow(t.Dialect.ScheduleQueries().LockStartTAT, operation).Scan(&tat); err != nil {
		return time.Time{}, fmt.Errorf("lock start rate of %s: %w", operation, t.Interpret(err))
	}
	return timeOrZero(tat), nil
}

// PutStartTAT stores an operation's start TAT.
func (t *Tx) PutStartTAT(operation string, tat time.Time) error {
	return t.exec("put start tat", t.Dialect.ScheduleQueries().PutStartTAT, storage.Micros(tat), operation)
}

// RunningByKey counts running jobs by concurrency key. Drivers with
// concurrent transactions serialize first (see CountRunning).
func (t *Tx) RunningByKey(operation string) (map[string]int, error) {
	rows, err := t.Conn.Query(t.Dialect.ScheduleQueries().RunningByKey, operation)
	pairs, err := Collect(rows, err, scanKeyCount)
	if err != nil {
		return nil, fmt.Errorf("running by key of %s: %w", operation, t.Interpret(err))
	}
	out := make(map[string]int, len(pairs))
	for _, p := range pairs {
		out[p.key] = p.n
	}
	return out, nil
}

// FairKeys reads the distinct fair keys of queued jobs, by skipping along the
// jobs_queued_fair index (a recursive query: one seek per key).
func (t *Tx) FairKeys(tenant, operation string, limit int) ([]string, error) {
	cond, args := "operation = ?", []any{operation}
	if tenant != "" {
		cond, args = "operation = ? AND tenant = ?", []any{operation, tenant}
	}
	q := t.Dialect.Render(fmt.Sprintf(flowFairKeysBody, cond))
	rows, err := t.Conn.Query(q, append(append(append([]any{}, args...), args...), limit)...)
	keys, err := Collect(rows, err, ScanID)
	if err != nil {
		return nil, fmt.Errorf("fair keys of %s: %w", operation, t.Interpret(err))
	}
	return keys, nil
}

// QueuedJobsWhere claims the queued jobs p selects, in run order.
func (t *Tx) QueuedJobsWhere(p storage.QueuedParams) ([]*errand.Job, error) {
	var w Where
	w.Add("operation = ?", p.Operation)
	if p.Tenant != "" {
		w.Add("tenant = ?", p.Tenant)
	}
	if p.FairKey != nil {
		w.Add("fair_key <> '' AND fair_key = ?", *p.FairKey)
	}
	if len(p.SkipKeys) > 0 {
		in, args := t.Dialect.AnyOf("concurrency_key", p.SkipKeys)
		w.Add("NOT ("+in+")", args...)
	}
	body := `SELECT ` + JobColumns + ` FROM jobs WHERE status = 'queued' AND ` + w.SQL() + flowQueuedOrder + claimRows
	if t.Dialect.cutsInSQL {
		body = queuedJobs(w.SQL())
	}
	rows, err := t.Conn.Query(t.Dialect.Render(body), t.Dialect.budget(w.Args(p.Limit), p.MaxBytes)...)
	js, err := CollectBytes(rows, err, p.MaxBytes, ScanJob, (*errand.Job).Bytes)
	return js, t.Interpret(err)
}

// headsPerStatement bounds the keys of one QueuedHeads statement (SQLite
// allows 500 terms in a compound SELECT).
const headsPerStatement = 256

// headsBody is QueuedHeads' statement with arms sub-selects, each of up to
// limit of one key's queued jobs of an operation (cond, then the key). The
// limit is in the text: SQLite plans a statement again whenever a LIMIT
// bound as a parameter changes (see storage/sqlite's limit.go), and parsing
// one of a hundred sub-selects cost more than running it.
func headsBody(arms, limit int, cond string) string {
	arm := `SELECT id FROM (SELECT id FROM jobs WHERE status = 'queued' AND ` + cond +
		` AND fair_key <> '' AND fair_key = ? ORDER BY priority DESC, run_at, id LIMIT ` + strconv.Itoa(limit) + `)`
	return `SELECT ` + JobColumns + ` FROM jobs WHERE id IN (` + strings.TrimSuffix(strings.Repeat(arm+" UNION ALL ", arms), " UNION ALL ") + `)
		ORDER BY fair_key, priority DESC, run_at, id`
}

// CachedQuerier is a Conn that keeps the statements it is given prepared
// (SQLite's writer): QueuedHeads' texts are few (powers of two of keys and
// of the largest quota), so each is parsed once.
type CachedQuerier interface {
	QueryCached(q string, args ...any) (Rows, error)
}

// pow2 is the smallest power of two at least n.
func pow2(n int) int {
	p := 1
	for p < n {
		p *= 2
	}
	return p
}

// QueuedHeads claims the heads of several fair keys: one sub-select per key,
// joined by UNION ALL (SQLite; PostgreSQL's driver does it its own way, as FOR
// UPDATE cannot go with UNION).
func (t *Tx) QueuedHeads(p storage.QueuedParams, quotas []storage.KeyQuota) ([]*errand.Job, error) {
	var out []*errand.Job
	budget := p.MaxBytes
	for len(quotas) > 0 && budget >= 0 {
		part := quotas[:min(len(quotas), headsPerStatement)]
		quotas = quotas[len(part):]
		js, err := t.heads(p, part)
		if err != nil {
			return nil, fmt.Errorf("queued heads of %s: %w", p.Operation, t.Interpret(err))
		}
		js = cutHeads(js, part, budget)
		out = append(out, js...)
		budget = spent(budget, js)
	}
	return out, nil
}

// heads reads up to the largest quota of each key's queued jobs, ordered by
// key then run order; arms are padded to a power of two with a key that is
// none (""), so a statement's text depends only on the two powers of two
// (and the conditions).
func (t *Tx) heads(p storage.QueuedParams, part []storage.KeyQuota) ([]*errand.Job, error) {
	var w Where
	headsWhere(&w, t.Dialect, p)
	most := 0
	for _, q := range part {
		most = max(most, q.N)
	}
	arms := pow2(len(part))
	var args []any
	for i := range arms {
		key := "" // a padding arm: no key, nothing
		if i < len(part) {
			key = part[i].Key
		}
		args = append(args, w.Args(key)...)
	}
	q := t.Dialect.Render(headsBody(arms, pow2(most), w.SQL()))
	var rows Rows
	var err error
	if c, ok := t.Conn.(CachedQuerier); ok && len(p.SkipKeys) == 0 {
		rows, err = c.QueryCached(q, args...)
	} else {
		rows, err = t.Conn.Query(q, args...)
	}
	return Collect(rows, err, ScanJob)
}

// cutHeads keeps, of jobs ordered by fair key, each key's first quota and,
// with a byte budget (0: none), those that fit in it (always the first).
func cutHeads(jobs []*errand.Job, part []storage.KeyQuota, budget int64) []*errand.Job {
	quota := make(map[string]int, len(part))
	for _, q := range part {
		quota[q.Key] = q.N
	}
	var out []*errand.Job
	used := int64(0)
	for _, j := range jobs {
		if quota[j.FairKey] <= 0 || (budget > 0 && used >= budget) {
			continue
		}
		quota[j.FairKey]--
		used += j.Bytes()
		out = append(out, j)
	}
	return out
}

// HeadsWhere is the condition of one fair key's queued jobs (key as given,
// or a column reference when key is ""), with ? placeholders.
func HeadsWhere(w *Where, d Dialect, p storage.QueuedParams, keyExpr string) {
	w.Add("operation = ?", p.Operation)
	if p.Tenant != "" {
		w.Add("tenant = ?", p.Tenant)
	}
	w.Add("fair_key <> '' AND fair_key = " + keyExpr)
	if len(p.SkipKeys) > 0 {
		in, args := d.AnyOf("concurrency_key", p.SkipKeys)
		w.Add("NOT ("+in+")", args...)
	}
}

// headsWhere is the condition of one key's queued jobs, less the key.
func headsWhere(w *Where, d Dialect, p storage.QueuedParams) {
	w.Add("operation = ?", p.Operation)
	if p.Tenant != "" {
		w.Add("tenant = ?", p.Tenant)
	}
	if len(p.SkipKeys) > 0 {
		in, args := d.AnyOf("concurrency_key", p.SkipKeys)
		w.Add("NOT ("+in+")", args...)
	}
}

// spent is what a byte budget (0: none) leaves after jobs; -1 when used up.
func spent(budget int64, jobs []*errand.Job) int64 {
	if budget == 0 {
		return 0
	}
	for _, j := range jobs {
		budget -= j.Bytes()
	}
	if budget <= 0 {
		return -1
	}
	return budget
}

// OperationFlows reads every stored operation state.
func (r *Reader) OperationFlows(ctx context.Context) ([]storage.OperationFlow, error) {
	return list(ctx, r, "operation flows", qOperationFlows, nil, func(row Row) (storage.OperationFlow, error) {
		var f storage.OperationFlow
		var paused, tat, updated int64
		err := row.Scan(&f.Operation, &paused, &tat, &updated)
		f.Paused, f.StartTAT, f.UpdatedAt = paused != 0, timeOrZero(tat), timeOrZero(updated)
		return f, err
	})
}

// RunningCounts counts running jobs per operation.
func (r *Reader) RunningCounts(ctx context.Context) (map[string]int, error) {
	pairs, err := list(ctx, r, "running counts", qRunningCounts, nil, scanKeyCount)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(pairs))
	for _, p := range pairs {
		out[p.key] = p.n
	}
	return out, nil
}

type keyCount struct {
	key string
	n   int
}

func scanKeyCount(r Row) (keyCount, error) {
	var kc keyCount
	return kc, r.Scan(&kc.key, &kc.n)
}

// timeOrZero is a stored µs time, zero for 0.
func timeOrZero(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return storage.FromMicros(us)
}
