package sqlrow

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// The broker bridges' part of storage.Reader and storage.Tx.

// ScanLogEvent reads a row of ListLog: EventColumns, then the operation.
func ScanLogEvent(r Row) (storage.LogEvent, error) {
	e := &errand.Event{}
	var t int64
	var exp *int64
	var op string
	if err := r.Scan(&e.Seq, &e.Stream, &e.Tenant, &e.Type, &t, &e.Data, &exp, &op); err != nil {
		return storage.LogEvent{}, err
	}
	e.Time, e.ExpiresAt = storage.FromMicros(t), TimePtr(exp)
	return storage.LogEvent{Event: e, Operation: op}, nil
}

// ScanBridgeReply reads a row of GetBridgeReply.
func ScanBridgeReply(r Row) (*storage.BridgeReply, error) {
	b := &storage.BridgeReply{}
	var created int64
	if err := r.Scan(&b.JobID, &b.Bridge, &b.Address, &b.Correlation, &created); err != nil {
		return nil, err
	}
	if len(b.Correlation) == 0 {
		b.Correlation = nil
	}
	b.CreatedAt = storage.FromMicros(created)
	return b, nil
}

// ListLog reads every stream's committed events after a cursor, in order.
func (r *Reader) ListLog(ctx context.Context, after int64, limit int) ([]storage.LogEvent, error) {
	return r.ListLogUpTo(ctx, after, math.MaxInt64, limit)
}

// ListLogUpTo is ListLog of the events up to seq upTo.
func (r *Reader) ListLogUpTo(ctx context.Context, after, upTo int64, limit int) ([]storage.LogEvent, error) {
	rows, err := r.DB.Query(ctx, r.Q.ListLog, after, upTo, limit)
	evs, err := Collect(rows, err, ScanLogEvent)
	if err != nil {
		return nil, fmt.Errorf("list log: %w", r.Interpret(err))
	}
	return evs, nil
}

// BridgeCursor reads a route's stored cursor.
func (r *Reader) BridgeCursor(ctx context.Context, route string) (int64, error) {
	var seq int64
	err := r.Interpret(r.DB.QueryRow(ctx, r.Q.BridgeCursor, route).Scan(&seq))
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return 0, fmt.Errorf("bridge cursor: %w", err)
	}
	return seq, err
}

// GetBridgeReply reads the reply owed for a job.
func (r *Reader) GetBridgeReply(ctx context.Context, jobID string) (*storage.BridgeReply, error) {
	b, err := ScanBridgeReply(r.DB.QueryRow(ctx, r.Q.GetBridgeReply, jobID))
	return b, r.Interpret(err)
}

// PutBridgeCursor stores a route's cursor, never moving it back.
func (t *Tx) PutBridgeCursor(route string, seq int64, now time.Time) error {
	return t.exec("put bridge cursor", t.Q.PutBridgeCursor, route, seq, storage.Micros(now))
}

// SeenMessage records a message id and reports whether a live record was there.
func (t *Tx) SeenMessage(scope, id string, now, expires time.Time) (bool, error) {
	n, err := t.Conn.Exec(t.Q.SeenMessage, scope, id, storage.Micros(expires), storage.Micros(now))
	if err != nil {
		return false, fmt.Errorf("seen message: %w", err)
	}
	return n == 0, nil
}

// ExpireSeenMessages deletes records of messages that expired at or before now.
func (t *Tx) ExpireSeenMessages(now time.Time, limit int) (int, error) {
	n, err := t.Conn.Exec(t.Q.ExpireSeenMessages, storage.Micros(now), limit)
	if err != nil {
		return 0, fmt.Errorf("expire seen messages: %w", err)
	}
	return int(n), nil
}

// InsertBridgeReply stores a reply owed for a job.
func (t *Tx) InsertBridgeReply(b *storage.BridgeReply) error {
	return t.exec("insert bridge reply", t.Q.InsertBridgeReply, b.JobID, b.Bridge, b.Address, b.Correlation,
		storage.Micros(b.CreatedAt))
}

// DeleteBridgeReply removes the reply owed for a job.
func (t *Tx) DeleteBridgeReply(jobID string) error {
	return t.execOne("delete bridge reply", t.Q.DeleteBridgeReply, jobID)
}

// ExpireBridgeReplies deletes replies stored before before.
func (t *Tx) ExpireBridgeReplies(before time.Time, limit int) (int, error) {
	n, err := t.Conn.Exec(t.Q.ExpireBridgeReplies, storage.Micros(before), limit)
	if err != nil {
		return 0, fmt.Errorf("expire bridge replies: %w", err)
	}
	return int(n), nil
}
