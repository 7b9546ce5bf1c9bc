package client

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/errandhq/errand/signing"
)

// WebhookEvent is a verified delivery from errand: its webhook-id (the same on
// every retry, so a receiver can drop repeats) and its body.
type WebhookEvent struct {
	ID        string          `json:"-"`
	Type      string          `json:"type"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// MaxWebhookBody is the largest delivery body VerifyWebhook reads (1 MiB).
const MaxWebhookBody = 1 << 20

// VerifyWebhook reads a delivery's body and checks its Standard Webhooks
// signature against secret (an endpoint's, or the tenant's callback secret; pass
// several while rotating) and its timestamp against the clock (±5 minutes). A
// receiver is three lines:
//
//	ev, err := client.VerifyWebhook(r, secret)
//	if err != nil { http.Error(w, err.Error(), http.StatusUnauthorized); return }
//	handle(ev) // ev.Type, ev.Data
func VerifyWebhook(r *http.Request, secrets ...string) (*WebhookEvent, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxWebhookBody))
	if err != nil {
		return nil, fmt.Errorf("read webhook body: %w", err)
	}
	now := time.Now()
	err = signing.ErrSignature
	for _, s := range secrets {
		if err = signing.Verify(s, r.Header, body, now); err == nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	ev := &WebhookEvent{ID: r.Header.Get("webhook-id")}
	if err := json.Unmarshal(body, ev); err != nil {
		return nil, fmt.Errorf("webhook body: %w", err)
	}
	return ev, nil
}
