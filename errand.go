package errand

import (
	"encoding/json"
	"strings"
	"time"
)

// Status is where a job is in its life.
type Status string

// The statuses of a job. A job starts queued (or scheduled when run_at is in the
// future), becomes running when a worker leases it, and ends succeeded, failed or
// canceled. A failed attempt that will be retried goes back to scheduled.
const (
	StatusScheduled Status = "scheduled"
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusCanceled  Status = "canceled"
)

// Terminal reports whether s is a final status.
func (s Status) Terminal() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCanceled
}

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusScheduled, StatusQueued, StatusRunning, StatusSucceeded, StatusFailed, StatusCanceled:
		return true
	}
	return false
}

// Job is one request to run an operation.
type Job struct {
	ID              string            `json:"id"`
	Operation       string            `json:"operation"`
	Status          Status            `json:"status"`
	Input           json.RawMessage   `json:"input"`
	Result          json.RawMessage   `json:"result"`
	Error           *Problem          `json:"error"`
	Progress        *Progress         `json:"progress"`
	Attempt         int               `json:"attempt"`
	MaxAttempts     int               `json:"max_attempts"`
	Priority        int               `json:"priority"`
	TimeoutSeconds  int               `json:"timeout_seconds"`
	CancelRequested bool              `json:"cancel_requested"`
	Metadata        map[string]string `json:"metadata,omitempty"`
	CallbackURL     string            `json:"callback_url,omitempty"`
	CreatedAt       time.Time         `json:"created_at"`
	RunAt           time.Time         `json:"run_at"`
	StartedAt       *time.Time        `json:"started_at"`
	FinishedAt      *time.Time        `json:"finished_at"`
	Artifacts       []Artifact        `json:"artifacts"`

	// Tenant scopes who may see the job. Owner is the subject that submitted it.
	Tenant string `json:"-"`
	Owner  string `json:"-"`
	// LeaseToken is the secret half of the current lease id; empty when not leased.
	LeaseToken     string     `json:"-"`
	LeaseExpiresAt *time.Time `json:"-"`
	Worker         string     `json:"-"`
	// IdempotencyKey and RequestHash detect replays of the same submission.
	IdempotencyKey string `json:"-"`
	RequestHash    string `json:"-"`
	// ExpiresAt is when retention deletes a finished job; nil until it finishes.
	ExpiresAt *time.Time `json:"-"`
	// TraceParent is the W3C trace context of the request that submitted the
	// job ("00-<trace id>-<span id>-<flags>"), kept so that every later step —
	// leases, attempts, the worker's own spans, completion, webhook
	// deliveries — continues the submitter's trace on any node, after any
	// restart. Empty when the submit carried none and errand traced nothing.
	TraceParent string `json:"-"`
	// QueueKey is the value of the operation's max_queued key for the job
	// (Flow.MaxQueued.Key), set at submit: the queue it counts in. Empty
	// when the operation bounds its queue as a whole, or not at all.
	QueueKey string `json:"-"`
	// QueuePosition and EstimatedStartAt are shown while the job is queued
	// (GET /v1/jobs/{id}): how many queued jobs of its operation run before
	// it, plus one, and when it may start at the operation's recent drain
	// rate (an estimate; nil when nothing drained lately). Not stored.
	QueuePosition    *int       `json:"queue_position,omitempty"`
	EstimatedStartAt *time.Time `json:"estimated_start_at,omitempty"`
	// ConcurrencyKey is the value of the operation's concurrency_key for this
	// job, taken at submit, as StoredKey keeps it ("" when the operation has
	// none): at most the key's limit of jobs with the same value run at once.
	ConcurrencyKey string `json:"-"`
	// FairKey is the value of the operation's fairness key for this job, taken
	// at submit, as StoredKey keeps it ("" when the operation has none): leases
	// are shared between the values.
	FairKey string `json:"-"`
}

// jobLinks are the related resources of a job.
type jobLinks struct {
	Self   string `json:"self"`
	Events string `json:"events"`
}

// MarshalJSON renders the job as clients see it, with its links (see
// AppendJSON).
func (j *Job) MarshalJSON() ([]byte, error) { return j.AppendJSON(nil), nil }

// Path is the job's resource path, e.g. /v1/jobs/job_01JD….
func (j *Job) Path() string { return "/v1/jobs/" + j.ID }

// Stream is the name of the job's event stream: its id.
func (j *Job) Stream() string { return j.ID }

// LeaseID is the id a worker uses to act on the job while it holds the lease.
// It is empty when the job is not leased.
func (j *Job) LeaseID() string {
	if j.LeaseToken == "" {
		return ""
	}
	return LeasePrefix + j.ID + "." + j.LeaseToken
}

// Progress is what a worker last said about how far along a job is.
type Progress struct {
	Percent float64 `json:"percent"`
	Message string  `json:"message,omitempty" nul:"allow"` // stored in a JSON document, not as text
}

// Lease is a worker's time-limited claim on one job.
type Lease struct {
	ID        string    `json:"lease_id"`
	ExpiresAt time.Time `json:"expires_at"`
	// TraceParent is the W3C trace context the worker continues: the job's
	// attempt span while errand traces, else the submitter's context; empty
	// when the job has none.
	TraceParent string `json:"traceparent,omitempty"`
	Job         *Job   `json:"job"`
}

// LeasePrefix starts every lease id.
const LeasePrefix = "lease_"

// leaseRedacted stands for a lease id's token where it was cut out.
const leaseRedacted = "[redacted]"

// RedactLeases replaces the token of every lease id in s
// (lease_<job id>.<token>) with "[redacted]", keeping the job id. A lease id is
// a bearer capability: what goes to a log or the audit log passes through here.
func RedactLeases(s string) string {
	if !strings.Contains(s, LeasePrefix) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, LeasePrefix)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := i + len(LeasePrefix)
		for j < len(s) && isIDByte(s[j]) {
			j++
		}
		k := j
		if j < len(s) && s[j] == '.' {
			for k = j + 1; k < len(s) && !strings.ContainsRune(" \t\r\n/?#&\"',;)", rune(s[k])); k++ {
			}
		}
		if k > j+1 {
			b.WriteString(s[:j+1])
			b.WriteString(leaseRedacted)
		} else {
			k = j
			b.WriteString(s[:j])
		}
		s = s[k:]
	}
}

func isIDByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// Event is one entry in the event log.
type Event struct {
	// Seq is the event's position in the log; its decimal form is the cursor.
	Seq    int64           `json:"-"`
	Stream string          `json:"stream"`
	Type   string          `json:"type"`
	Time   time.Time       `json:"time"`
	Data   json.RawMessage `json:"data"`
	Tenant string          `json:"-"`
	// ExpiresAt is when retention deletes a channel event; nil for job events
	// (they go with their job).
	ExpiresAt *time.Time `json:"-"`
	// Job is the job a job event is about, as of the event, when the appender
	// had it at hand. It is not stored: it lets code inside the event's
	// transaction (the webhook outbox) see the job without decoding Data.
	Job *Job `json:"-"`
	// TraceParent is the W3C trace context of what appended the event (a
	// channel publish's request), when it had one. Like Job it is not stored:
	// it is known on the node that committed the event (the webhook outbox
	// gives it to the event's deliveries, which keep it).
	TraceParent string `json:"-"`
}

// The job event types.
const (
	EventJobCreated   = "job.created"
	EventJobStarted   = "job.started"
	EventJobProgress  = "job.progress"
	EventJobRetrying  = "job.retrying"
	EventJobSucceeded = "job.succeeded"
	EventJobFailed    = "job.failed"
	EventJobCanceled  = "job.canceled"
)

// TerminalEvent reports whether an event type ends a job's stream.
func TerminalEvent(typ string) bool {
	return typ == EventJobSucceeded || typ == EventJobFailed || typ == EventJobCanceled
}

// MarshalJSON renders the event with its cursor as id.
func (e *Event) MarshalJSON() ([]byte, error) {
	type plain Event
	return json.Marshal(struct {
		ID string `json:"id"`
		*plain
	}{e.Cursor(), (*plain)(e)})
}

// Cursor is the resume position just after this event.
func (e *Event) Cursor() string { return FormatCursor(e.Seq) }

// Problem is an RFC 9457 problem as stored on a failed job and sent to clients.
type Problem struct {
	Type   string       `json:"type,omitempty"`
	Title  string       `json:"title,omitempty"`
	Status int          `json:"status,omitempty"`
	Code   string       `json:"code"`
	Detail string       `json:"detail,omitempty"`
	Errors []FieldError `json:"errors,omitempty"`
}

// FieldError points at one part of a request that is wrong.
type FieldError struct {
	Pointer string `json:"pointer"`
	Message string `json:"message"`
}

// Artifact is a file a job produced, such as a rendered report.
type Artifact struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	URL         string `json:"url"`
}

// ValidArtifactName reports whether name may name an artifact: 1 to 128 letters,
// digits, '.', '_' or '-', not starting with '.'. Nothing else can reach a path.
func ValidArtifactName(name string) bool {
	if len(name) == 0 || len(name) > 128 || name[0] == '.' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// AddArtifact records a (or replaces the same-named) artifact on the job.
func (j *Job) AddArtifact(a Artifact) {
	a.URL = j.Path() + "/artifacts/" + a.Name
	for i := range j.Artifacts {
		if j.Artifacts[i].Name == a.Name {
			j.Artifacts[i] = a
			return
		}
	}
	j.Artifacts = append(j.Artifacts, a)
}

// Now is the time in UTC at the precision the stores keep (microseconds), so a
// job or event reads back exactly as it was first sent.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
