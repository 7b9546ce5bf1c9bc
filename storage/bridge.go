package storage

import (
	"context"
	"time"

	"github.com/errandhq/errand"
)

// LogEvent is an event read from the whole log (ListLog), with the operation
// of its job for a job event ("" for other streams, or a job since deleted).
type LogEvent struct {
	*errand.Event
	Operation string
}

// BridgeReply is a reply a broker bridge owes: the terminal event of the job
// goes to Address (a NATS subject, an AMQP queue, an MQTT topic, a Kafka
// topic) with Correlation copied, once the job ends. It is stored with the
// job, in the submit's transaction.
type BridgeReply struct {
	JobID       string
	Bridge      string
	Address     string
	Correlation []byte // nil when the message carried none
	CreatedAt   time.Time
}

// BridgeReader reads what broker bridges need: the whole log in order, their
// routes' cursors and the replies they owe.
type BridgeReader interface {
	// ListLog returns up to limit events of every stream of every tenant after
	// seq after, in log (seq) order. It never returns an event past the point
	// up to which every event has committed or never will (PostgreSQL's
	// horizon; see ListEvents), so a reader that moves its cursor over what it
	// read never skips one that commits later.
	ListLog(ctx context.Context, after int64, limit int) ([]LogEvent, error)
	// BridgeCursor returns the stored cursor of a route, or ErrNotFound.
	BridgeCursor(ctx context.Context, route string) (int64, error)
	// GetBridgeReply returns the reply owed for a job, or ErrNotFound.
	GetBridgeReply(ctx context.Context, jobID string) (*BridgeReply, error)
}

// BridgeTx is what broker bridges write in a transaction.
type BridgeTx interface {
	// PutBridgeCursor stores a route's cursor. It never moves a cursor back: a
	// lower seq than the stored one changes nothing (two nodes briefly both
	// leading a route cannot undo each other's progress).
	PutBridgeCursor(route string, seq int64, now time.Time) error
	// SeenMessage records message id in scope until expires and reports
	// whether a record of it was already there and had not expired at now (a
	// redelivery). Concurrent transactions recording the same id are
	// serialized: one sees the other's record once it commits.
	SeenMessage(scope, id string, now, expires time.Time) (bool, error)
	// ExpireSeenMessages deletes up to limit records that expired at or before
	// now; it returns how many it deleted.
	ExpireSeenMessages(now time.Time, limit int) (int, error)
	// InsertBridgeReply stores a reply owed for a job (one per job).
	InsertBridgeReply(r *BridgeReply) error
	// DeleteBridgeReply removes the reply owed for a job, or returns ErrNotFound.
	DeleteBridgeReply(jobID string) error
	// ExpireBridgeReplies deletes up to limit replies stored before before; it
	// returns how many it deleted.
	ExpireBridgeReplies(before time.Time, limit int) (int, error)
}
