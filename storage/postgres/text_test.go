package postgres_test

import (
	"context"
	"testing"

	"github.com/errandhq/errand"
)

// TestTextPostgresCannotKeep: a NUL or bytes that are not UTF-8 in a text
// column make PostgreSQL raise 22021, which the driver answers as the
// client's invalid input (422), not as an internal error; the store goes on.
func TestTextPostgresCannotKeep(t *testing.T) {
	t.Parallel()
	u := testURL(t)
	s := openSchema(t, u, newSchema(t, u))
	ctx := context.Background()
	for _, key := range []string{"k\x00", "k\xff"} {
		if _, err := s.Setting(ctx, key, "v"); errand.ErrorCode(err) != errand.EVALIDATION {
			t.Errorf("Setting(%q) = %v, want validation_failed", key, err)
		}
	}
	if v, err := s.Setting(ctx, "k", "v"); err != nil || v != "v" {
		t.Fatalf("Setting after: %q, %v", v, err)
	}
}
