package bridge

import (
	"context"
	"time"
)

// Dialer connects to one kind of broker. Each adapter (bridge/nats,
// bridge/amqp, bridge/mqtt, bridge/kafka) is one; cmd/errand hands the
// bridges one per broker.
type Dialer interface {
	// Dial connects to the broker of cfg (its url, options and TLS). It
	// returns once the connection is ready, or fails.
	Dial(ctx context.Context, cfg *Config, ep *Endpoint) (Conn, error)
}

// Conn is one connection to a broker.
type Conn interface {
	// Publish sends msgs and returns once the broker has confirmed every one
	// (NATS: JetStream's ack where a stream holds the subject, else a flush;
	// AMQP: publisher confirms; MQTT: PUBACK at QoS 1, PUBCOMP at 2; Kafka:
	// acks from every in-sync replica). Messages of one stream (Message.Stream)
	// reach the broker in the order given. An error means some may not have
	// been confirmed: the caller sends them all again.
	Publish(ctx context.Context, msgs []*Message) error
	// Consume takes messages of a subscribe route and hands each to deliver,
	// from one goroutine, in the broker's order; deliver may block (that is
	// backpressure). It returns when ctx ends or the connection fails. The
	// adapter acknowledges a message to the broker when its Ack is called,
	// never before; one never acked is redelivered by the broker.
	Consume(ctx context.Context, route *Subscribe, deliver func(*Inbound)) error
	// Lost is closed when the connection is lost (the bridge dials again).
	Lost() <-chan struct{}
	// Close ends the connection.
	Close() error
}

// Message is one message errand sends: an event, or the reply to a message
// that submitted a job.
type Message struct {
	// Address is the rendered to: (or the reply address).
	Address string
	// ID is the event id: the de-duplication id the message carries
	// (Nats-Msg-Id, AMQP message-id, MQTT 5 user property errand-id, Kafka
	// key and errand-id header).
	ID string
	// Type, Stream and Time are the event's; they travel as headers
	// (properties) beside the body.
	Type, Stream string
	Time         time.Time
	// Body is the event's JSON ({"id","stream","type","time","data"}), or a
	// problem's for a refused message's reply.
	Body []byte
	// ContentType is the body's: application/json, or application/problem+json.
	ContentType string
	// Reply is set on a reply: Address is a reply address (for AMQP a queue on
	// the default exchange), Correlation is copied from the request.
	Reply       bool
	Correlation []byte
}

// Inbound is one message taken from a broker.
type Inbound struct {
	// Topic is where it came from: the subject, topic, or AMQP routing key.
	Topic string
	// Payload is its body; ContentType the type the message declares ("" none).
	Payload     []byte
	ContentType string
	// Type is the message's own type (AMQP type property; a type header or
	// user property), "" when none.
	Type string
	// ID is the broker's id for the message, stable across redeliveries
	// (Nats-Msg-Id or the JetStream stream sequence, AMQP message-id, MQTT 5
	// user property message-id or errand-id, Kafka message-id/errand-id header
	// or topic/partition/offset), "" when it has none.
	ID string
	// Redelivered is set when the broker says the message may have been
	// delivered before (MQTT DUP, AMQP redelivered, JetStream delivery count).
	Redelivered bool
	// NeverRedelivered is set by brokers that never deliver a message twice
	// (core NATS): a message without an ID is then not hashed for de-duplication.
	NeverRedelivered bool
	// ReplyTo and Correlation are the reply address (NATS reply subject, AMQP
	// reply_to, MQTT 5 response topic, Kafka reply-topic header) and what to
	// copy to the reply (AMQP correlation_id, MQTT 5 correlation data, Kafka
	// correlation-id header).
	ReplyTo     string
	Correlation []byte
	// Ack acknowledges the message to the broker, after errand committed it
	// (nil: nothing to acknowledge).
	Ack func() error
}
