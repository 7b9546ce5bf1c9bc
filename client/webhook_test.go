package client_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/client"
	"github.com/errandhq/errand/signing"
)

func TestVerifyWebhook(t *testing.T) {
	secret, other := signing.NewSecret(), signing.NewSecret()
	body := `{"type":"job.succeeded","timestamp":"2026-11-22T12:00:00Z","data":{"id":"job_1"}}`
	mk := func(ts time.Time, signWith ...string) *http.Request {
		r := httptest.NewRequest("POST", "/hook", strings.NewReader(body))
		signing.SetHeaders(r.Header, "msg_1", ts, []byte(body), signWith...)
		return r
	}
	ev, err := client.VerifyWebhook(mk(time.Now(), secret), secret)
	if err != nil || ev.ID != "msg_1" || ev.Type != "job.succeeded" || string(ev.Data) != `{"id":"job_1"}` {
		t.Fatalf("VerifyWebhook = %+v, %v", ev, err)
	}
	if _, err := client.VerifyWebhook(mk(time.Now(), other), secret); err != signing.ErrSignature {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := client.VerifyWebhook(mk(time.Now(), secret), other, secret); err != nil {
		t.Fatalf("while rotating (two secrets trusted): %v", err)
	}
	if _, err := client.VerifyWebhook(mk(time.Now().Add(-10*time.Minute), secret), secret); err != signing.ErrTimestamp {
		t.Fatalf("old timestamp: %v", err)
	}
	tampered := mk(time.Now(), secret)
	tampered.Body = httptest.NewRequest("POST", "/", strings.NewReader(strings.Replace(body, "job_1", "job_2", 1))).Body
	if _, err := client.VerifyWebhook(tampered, secret); err != signing.ErrSignature {
		t.Fatalf("tampered body: %v", err)
	}
}
