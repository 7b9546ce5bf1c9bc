package worker

import (
	"errors"
	"testing"

	"github.com/errandhq/errand"
)

func TestRefused(t *testing.T) {
	ok := completeResult{LeaseID: "lease_a"}
	lost := completeResult{LeaseID: "lease_b", Error: &errand.Problem{Code: errand.ELEASEEXPIRED, Detail: "the lease expired"}}
	bad := completeResult{LeaseID: "lease_c", Error: &errand.Problem{Code: errand.EINVALID, Detail: "result too large"}}
	if err := refused(2, []completeResult{ok, ok}); err != nil {
		t.Fatalf("all accepted: %v", err)
	}
	err := refused(3, []completeResult{ok, lost, lost})
	if !errors.Is(err, ErrLeaseLost) || Transient(err) || err.Error() != "the lease was lost: 2 of 3 completions refused (the lease expired)" {
		t.Fatalf("lost leases: %v (transient %v)", err, Transient(err))
	}
	err = refused(2, []completeResult{bad, ok})
	var ee *errand.Error
	if !errors.As(err, &ee) || ee.Code != errand.EINVALID || Transient(err) {
		t.Fatalf("refused result: %v", err)
	}
}
