package storage_test

import (
	"math"
	"testing"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/storage"
)

// TestJSONOrNil: empty values are NULL, others their JSON, and a value that
// does not encode is an error (it was a silent NULL).
func TestJSONOrNil(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{(*errand.Problem)(nil), ""}, {(*errand.Progress)(nil), ""}, {map[string]string{}, ""}, {[]errand.Artifact(nil), ""},
		{map[string]string{"k": "v"}, `{"k":"v"}`}, {&errand.Progress{Percent: 50}, `{"percent":50}`},
	} {
		b, err := storage.JSONOrNil(c.v)
		if err != nil || string(b) != c.want || (c.want == "" && b != nil) {
			t.Errorf("JSONOrNil(%#v) = %q, %v; want %q", c.v, b, err, c.want)
		}
	}
	if b, err := storage.JSONOrNil(&errand.Progress{Percent: math.NaN()}); err == nil {
		t.Errorf("JSONOrNil(a NaN progress) = %q, nil; want an error", b)
	}
}
