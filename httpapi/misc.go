package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/bridge"
	"github.com/errandhq/errand/job"
	"github.com/errandhq/errand/storage"
)

func handleHealth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

func handleReady(acc *access, s storage.Store, bs *bridge.Bridges) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		if err := ready(r.Context(), s); err != nil {
			acc.log.Warn("not ready", "err", err)
			reason := "the store does not answer"
			if errand.ErrorCode(err) == errand.ESTORAGEFULL {
				reason = "writes fail: the store has no space left (storage_full); ready again once space is freed"
			}
			return errand.Errorf(errand.EUNAVAILABLE, "%s", reason)
		}
		if down := bridgesDown(bs); len(down) > 0 {
			encode(w, http.StatusOK, map[string]any{"status": "ready", "bridges_down": down})
			return nil
		}
		encode(w, http.StatusOK, map[string]string{"status": "ready"})
		return nil
	})
}

func handleNotFound(acc *access) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		return errand.Errorf(errand.ENOTFOUND, "no route for %s %s", r.Method, r.URL.Path)
	})
}

func handleMethodNotAllowed(acc *access, allow string) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Allow", allow)
		return errand.Errorf(errand.EMETHODNOTALLOWED, "%s is not allowed on %s; use %s", r.Method, r.URL.Path, allow)
	})
}

// operationView is an operation as clients see it.
type operationView struct {
	Name             string          `json:"name"`
	Description      string          `json:"description,omitempty"`
	Route            string          `json:"route,omitempty"`
	InputSchema      json.RawMessage `json:"input_schema,omitempty"`
	ResultSchema     json.RawMessage `json:"result_schema,omitempty"`
	Handler          string          `json:"handler"`
	TimeoutSeconds   int             `json:"timeout_seconds"`
	MaxAttempts      int             `json:"max_attempts"`
	Concurrency      int             `json:"concurrency"`
	WaitSeconds      float64         `json:"wait_seconds"`
	RetentionSeconds int             `json:"retention_seconds"`
	// SigningSecret is what an http handler's target verifies calls with; only
	// on the single-operation view.
	SigningSecret string `json:"signing_secret,omitempty"`
	// Queued and DrainRate are the queue's depth and how many of its jobs
	// started per second lately (job.QueueState); only on the
	// single-operation view.
	*job.QueueState
	flowView
}

func viewOperation(op errand.Operation, st operationState) operationView {
	return operationView{Name: op.Name, Description: op.Description, Route: op.Route, InputSchema: op.InputSchema,
		ResultSchema: op.ResultSchema, Handler: op.Handler.Type, TimeoutSeconds: int(op.Timeout.Seconds()), MaxAttempts: op.Retry.MaxAttempts,
		Concurrency: op.Concurrency, WaitSeconds: op.Wait.Seconds(), RetentionSeconds: int(op.Retention.Seconds()),
		flowView: viewFlow(op.Flow, st, op.Name)}
}

func handleListOperations(acc *access, jobs *job.Service, s storage.Reader) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		st, err := readOperationState(r.Context(), s)
		if err != nil {
			return err
		}
		out := []operationView{}
		for _, op := range jobs.Visible(principal(r)) {
			out = append(out, viewOperation(op, st))
		}
		encode(w, http.StatusOK, map[string]any{"operations": out})
		return nil
	})
}

func handleGetOperation(acc *access, jobs *job.Service, s storage.Reader) http.Handler {
	return acc.handle(func(w http.ResponseWriter, r *http.Request) error {
		p := principal(r)
		op, err := jobs.Describe(p, r.PathValue("name"))
		if err != nil {
			return err
		}
		st, err := readOperationState(r.Context(), s)
		if err != nil {
			return err
		}
		v := viewOperation(op, st)
		// The signing secret is the operator's: only key managers see it.
		if op.Handler.Type == errand.HandlerHTTP && p.Can(errand.PermKeysManage, "") {
			v.SigningSecret = op.Handler.Secret
		}
		q, err := jobs.Queue(r.Context(), op.Name)
		if err != nil {
			return err
		}
		v.QueueState = &q
		encode(w, http.StatusOK, v)
		return nil
	})
}
