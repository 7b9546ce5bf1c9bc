package httpapi

import (
	"context"
	"net/http"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/queue"
	"github.com/errandhq/errand/storage"
)

// flowView is an operation's flow control as clients see it: its limits
// (from configuration) and its state (from the store, shared by every node).
type flowView struct {
	Paused         bool                `json:"paused"`
	Running        int                 `json:"running"`
	StartRate      string              `json:"start_rate,omitempty"`
	ConcurrencyKey *concurrencyKeyView `json:"concurrency_key,omitempty"`
	Fairness       *fairnessView       `json:"fairness,omitempty"`
	RateLimit      *rateLimitView      `json:"rate_limit,omitempty"`
	MaxQueued      *maxQueuedView      `json:"max_queued,omitempty"`
	Unique         *uniqueView         `json:"unique,omitempty"`
}

type concurrencyKeyView struct {
	Key   string `json:"key"`
	Limit int    `json:"limit"`
}

type fairnessView struct {
	Key     string         `json:"key"`
	Weights map[string]int `json:"weights,omitempty"`
}

type rateLimitView struct {
	Rate  string `json:"rate"`
	Burst int    `json:"burst"`
	Key   string `json:"key"`
}

type maxQueuedView struct {
	Limit int    `json:"limit"`
	Key   string `json:"key,omitempty"`
}

type uniqueView struct {
	Key           string  `json:"key"`
	WindowSeconds float64 `json:"window_seconds"`
}

// operationState is what the store says of every operation now.
type operationState struct {
	paused  map[string]bool
	running map[string]int
}

func readOperationState(ctx context.Context, s storage.Reader) (operationState, error) {
	st := operationState{paused: map[string]bool{}}
	flows, err := s.OperationFlows(ctx)
	if err != nil {
		return st, err
	}
	for _, f := range flows {
		st.paused[f.Operation] = f.Paused
	}
	st.running, err = s.RunningCounts(ctx)
	return st, err
}

func viewFlow(f errand.Flow, st operationState, name string) flowView {
	v := flowView{Paused: st.paused[name], Running: st.running[name]}
	if !f.StartRate.IsZero() {
		v.StartRate = f.StartRate.String()
	}
	if ck := f.ConcurrencyKey; ck != nil {
		v.ConcurrencyKey = &concurrencyKeyView{Key: ck.Key.String(), Limit: ck.Limit}
	}
	if fr := f.Fairness; fr != nil {
		v.Fairness = &fairnessView{Key: fr.Key.String(), Weights: fr.Weights}
	}
	if rl := f.RateLimit; rl != nil {
		v.RateLimit = &rateLimitView{Rate: rl.Rate.String(), Burst: rl.Burst, Key: rl.Key.String()}
	}
	if mq := f.MaxQueued; mq != nil {
		v.MaxQueued = &maxQueuedView{Limit: mq.Limit, Key: mq.Key.String()}
	}
	if u := f.Unique; u != nil {
		v.Unique = &uniqueView{Key: u.Key.String(), WindowSeconds: u.Window.Seconds()}
	}
	return v
}

// handlePause pauses (or resumes) an operation's leases on every node:
// operations:pause@* (or --dev). Audited.
func handlePause(acc *access, q *queue.Queue, jobs *job.Service, s storage.Reader, paused bool) http.Handler {
	action := "operations:resume"
	if paused {
		action = "operations:pause"
	}
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		p := principal(r)
		name := r.PathValue("name")
		if !acc.dev && !p.CanEveryTenant(errand.PermOperationsPause, name) {
			return errand.Deny(errand.PermOperationsPause+errand.EveryTenant, name)
		}
		if _, err := q.Pause(r.Context(), name, paused); err != nil {
			return err
		}
		acc.recordAct(r, action, name, "")
		op, err := jobs.Operation(name)
		if err != nil {
			return err
		}
		st, err := readOperationState(r.Context(), s)
		if err != nil {
			return err
		}
		encode(w, http.StatusOK, viewOperation(op, st))
		return nil
	})
}
