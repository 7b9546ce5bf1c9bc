package errand

// Byte budgets. Counts alone do not bound memory: 1,000 jobs of 1 MB input are
// a gigabyte in one answer. So every page of jobs or events, every lease answer
// and every stream's buffers is also bounded by the bytes of what it carries
// (jobs' input and result, events' data): it holds fewer items when the budget
// runs out, always at least one. Every documented default comes from here.
const (
	// DefaultPageBytes bounds one list page (GET /v1/jobs, event history
	// pages) and one lease answer: 8 MiB.
	DefaultPageBytes = 8 << 20
	// DefaultReplayBytes bounds one read of an event stream's history (SSE and
	// WebSocket replay and catching up): 256 KiB. Small, because a subscriber
	// that stops reading holds its read until it goes away, and they are many.
	DefaultReplayBytes = 256 << 10
	// DefaultStreamBufferBytes bounds the live events waiting for one stream
	// (and for one WebSocket connection) before it is reset: 1 MiB.
	DefaultStreamBufferBytes = 1 << 20
)

// Bytes is what the job counts against a byte budget: its input and result.
func (j *Job) Bytes() int64 { return int64(len(j.Input) + len(j.Result)) }

// Bytes is what the event counts against a byte budget: its data.
func (e *Event) Bytes() int64 { return int64(len(e.Data)) }

// PageCut reports whether a page of n items holding bytes may have been cut
// short by its limit or by its byte budget maxBytes (0: none), so that a next
// page may hold more. A page that ends exactly at the budget counts as cut: the
// next page may then be empty.
func PageCut(n, limit int, bytes, maxBytes int64) bool {
	return n >= limit || (maxBytes > 0 && bytes >= maxBytes)
}
