package main

import (
	"os/exec"
	"strings"
	"testing"
)

// pyOversized sends a 12 MB body with Python's urllib, which writes the whole
// body before it reads the answer, and prints the status and problem code.
const pyOversized = `
import json, sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1] + "/v1/jobs", data=b"x" * (12 << 20), method="POST",
                             headers={"Content-Type": "application/json"})
try:
    urllib.request.urlopen(req, timeout=30)
    print("accepted")
except urllib.error.HTTPError as e:
    print(e.code, json.load(e)["code"])
except Exception as e:
    print("failed:", repr(e))
`

// TestE2EOversizedBodyReadsProblem: a client that sends a 12 MB body before
// reading (Python's urllib) reads the 413 body_too_large problem; before, errand
// answered and closed while the body was still coming and the client saw
// "connection reset". The server answers the next request as before.
func TestE2EOversizedBodyReadsProblem(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed for this test: %v", err)
	}
	s := startServer(t, testConfig) // http.max_body_bytes: 65536
	for range 2 {
		out, err := exec.Command(py, "-c", pyOversized, s.URL).CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != "413 body_too_large" {
			t.Fatalf("urllib with a 12 MB body: %q (%v), want 413 body_too_large", got, err)
		}
	}
	if code, _, body := s.do("POST", "/v1/jobs", `{"operation":"echo"}`); code != 202 {
		t.Fatalf("a submit after: %d %s", code, body)
	}
}
