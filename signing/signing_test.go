package signing

import (
	"net/http"
	"testing"
	"time"
)

// TestKnownVector checks against the example in the Standard Webhooks spec's
// reference libraries.
func TestKnownVector(t *testing.T) {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	ts := time.Unix(1614265330, 0)
	got := Sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", ts, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	old, cur := NewSecret(), NewSecret()
	now := time.Now()
	body := []byte(`{"a":1}`)
	h := http.Header{}
	SetHeaders(h, "msg_1", now, body, old, cur)
	for _, s := range []string{old, cur} {
		if err := Verify(s, h, body, now); err != nil {
			t.Fatalf("Verify with either rotated secret: %v", err)
		}
	}
	if err := Verify(NewSecret(), h, body, now); err != ErrSignature {
		t.Fatalf("Verify(other secret) = %v, want ErrSignature", err)
	}
	if err := Verify(cur, h, []byte(`{"a":2}`), now); err != ErrSignature {
		t.Fatalf("Verify(changed body) = %v, want ErrSignature", err)
	}
	if err := Verify(cur, h, body, now.Add(10*time.Minute)); err != ErrTimestamp {
		t.Fatalf("Verify 10 minutes later = %v, want ErrTimestamp", err)
	}
	if err := Verify(cur, http.Header{}, body, now); err != ErrMissing {
		t.Fatalf("Verify(no headers) = %v, want ErrMissing", err)
	}
}
