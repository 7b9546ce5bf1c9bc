// Package signing signs and verifies HTTP deliveries the Standard Webhooks way:
// headers webhook-id, webhook-timestamp and webhook-signature, the last being
// "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)), where the
// key is the base64 part of a "whsec_" secret. errand signs the requests it sends
// to HTTP targets with it, and webhook deliveries.
package signing

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every secret errand makes.
const SecretPrefix = "whsec_"

// NewSecret returns a new random secret (24 bytes of key).
func NewSecret() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return SecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// key returns the HMAC key of a secret: the decoded base64 after whsec_, or the
// secret's bytes as they are when it is not of that form (an operator's own string).
func key(secret string) []byte {
	if b64, ok := strings.CutPrefix(secret, SecretPrefix); ok {
		if k, err := base64.StdEncoding.DecodeString(b64); err == nil {
			return k
		}
	}
	return []byte(secret)
}

// Sign returns the webhook-signature value for a message.
func Sign(secret, id string, ts time.Time, body []byte) string {
	mac := hmac.New(sha256.New, key(secret))
	fmt.Fprintf(mac, "%s.%d.", id, ts.Unix())
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// SetHeaders signs body and sets the three headers on h. More than one secret
// (during a rotation) gives one signature each, separated by spaces.
func SetHeaders(h http.Header, id string, ts time.Time, body []byte, secrets ...string) {
	sigs := make([]string, len(secrets))
	for i, s := range secrets {
		sigs[i] = Sign(s, id, ts, body)
	}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", strings.Join(sigs, " "))
}

// Tolerance is how far a timestamp may be from now when verifying.
const Tolerance = 5 * time.Minute

// Errors from Verify.
var (
	ErrMissing   = errors.New("webhook headers missing")
	ErrTimestamp = errors.New("webhook timestamp too old or too new")
	ErrSignature = errors.New("no matching webhook signature")
)

// Verify checks a signed message's headers against secret at time now.
func Verify(secret string, h http.Header, body []byte, now time.Time) error {
	id, tsText, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || tsText == "" || sigs == "" {
		return ErrMissing
	}
	sec, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return ErrTimestamp
	}
	ts := time.Unix(sec, 0)
	if now.Sub(ts) > Tolerance || ts.Sub(now) > Tolerance {
		return ErrTimestamp
	}
	want := Sign(secret, id, ts, body)
	for _, got := range strings.Fields(sigs) {
		if hmac.Equal([]byte(got), []byte(want)) {
			return nil
		}
	}
	return ErrSignature
}
