package httpapi

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/errandhq/errand"
)

func TestUnmarshalStrict(t *testing.T) {
	type req struct {
		Name  string            `json:"name"`
		N     *int              `json:"n"`
		Tags  map[string]string `json:"tags"`
		Inner struct {
			On bool `json:"on"`
		} `json:"inner"`
	}
	tests := []struct {
		body, code, pointer string
	}{
		{`{"name":"x","n":1}`, "", ""},
		{`{"name":`, errand.EMALFORMED, ""},
		{`{"name":"x"} {}`, errand.EMALFORMED, ""},
		{`{"name":"x"} x`, errand.EMALFORMED, ""},
		{`[1]`, errand.EMALFORMED, ""},
		{`"str"`, errand.EMALFORMED, ""},
		{`{"n":"1"}`, errand.EVALIDATION, "/n"},
		{`{"inner":{"on":"yes"}}`, errand.EVALIDATION, "/inner/on"},
		{`{"tags":{"a":1}}`, errand.EVALIDATION, "/tags"},
		{`{"nmae":"x"}`, errand.EVALIDATION, "/nmae"},
		{`{"n":1.5}`, errand.EVALIDATION, "/n"},
	}
	for _, tt := range tests {
		var v req
		err := unmarshalStrict([]byte(tt.body), &v)
		if got := errand.ErrorCode(err); got != tt.code {
			t.Errorf("unmarshalStrict(%s) code = %q (%v), want %q", tt.body, got, err, tt.code)
			continue
		}
		var e *errand.Error
		if tt.pointer != "" && (!errors.As(err, &e) || len(e.Fields) != 1 || e.Fields[0].Pointer != tt.pointer) {
			t.Errorf("unmarshalStrict(%s) = %+v, want pointer %s", tt.body, err, tt.pointer)
		}
	}
}

func TestProblemHidesInternalErrors(t *testing.T) {
	p := Problem(errors.New("open /var/lib/secret.db: permission denied"))
	if p.Code != errand.EINTERNAL || p.Status != http.StatusInternalServerError || strings.Contains(p.Detail, "secret") {
		t.Fatalf("Problem(untyped) = %+v, want an opaque internal error", p)
	}
	for code := range problems {
		if got := Problem(errand.Errorf(code, "x")); got.Code != code || got.Type != "/docs/problems#"+code {
			t.Errorf("Problem(%s) = %+v", code, got)
		}
	}
}

func FuzzDecodeSubmit(f *testing.F) {
	for _, s := range []string{`{"operation":"a","input":{"x":[1,2]},"priority":3}`, `{"run_at":"2026-12-01T00:00:00Z"}`,
		`{"metadata":{"k":"v"}}`, `{`, `[]`, `null`, `{"input":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req submitRequest
		err := unmarshalStrict(b, &req)
		if err != nil && errand.ErrorCode(err) == errand.EINTERNAL {
			t.Fatalf("unmarshalStrict(%q) = internal error %v; bad input must get a client error", b, err)
		}
		if err == nil {
			r, _ := http.NewRequest("POST", "/v1/jobs", nil)
			_, perr := req.params(r)
			if perr != nil && errand.ErrorCode(perr) == errand.EINTERNAL {
				t.Fatalf("params(%q) = internal error %v", b, perr)
			}
		}
	})
}
