package postgres

import (
	"errors"
	"fmt"
	"testing"

	"github.com/errandhq/errand"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestInterpretErrorCodes: the SQLSTATEs a full disk and text PostgreSQL
// cannot keep raise become the codes clients act on, however wrapped.
func TestInterpretErrorCodes(t *testing.T) {
	t.Parallel()
	for sqlstate, want := range map[string]string{
		"53100": errand.ESTORAGEFULL, // disk_full
		"53000": errand.ESTORAGEFULL, // insufficient_resources
		"53200": errand.EUNAVAILABLE, // out_of_memory
		"53300": errand.EUNAVAILABLE, // too_many_connections
		"22021": errand.EVALIDATION,  // character_not_in_repertoire: NUL, not UTF-8
		"22P05": errand.EVALIDATION,  // untranslatable_character
		"57P01": errand.EUNAVAILABLE, // admin_shutdown
		"23505": errand.EINTERNAL,    // unique_violation: a bug, not the client's
	} {
		err := interpretError(fmt.Errorf("insert job: %w", &pgconn.PgError{Code: sqlstate, Message: "x"}))
		if got := errand.ErrorCode(err); got != want {
			t.Errorf("SQLSTATE %s → %s (%v), want %s", sqlstate, got, err, want)
		}
	}
	var e *errand.Error
	if err := interpretError(&pgconn.PgError{Code: "53100"}); !errors.As(err, &e) || e.RetryAfter == 0 {
		t.Errorf("disk_full → %#v, want storage_full with a Retry-After", err)
	}
}
