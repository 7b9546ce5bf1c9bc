package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/errandhq/errand"
)

// TestE2EExampleWorkers runs the Python and Node example workers (standard
// library only) against the real server and checks they complete jobs.
func TestE2EExampleWorkers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, tool, file string }{
		{"python", "python3", "../../examples/python-worker/worker.py"},
		{"node", "node", "../../examples/node-worker/worker.mjs"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tool, err := exec.LookPath(tt.tool)
			if err != nil {
				t.Fatalf("%s is needed for the %s example: %v", tt.tool, tt.name, err)
			}
			s := startServer(t, testConfig+"\n  count-words: {}\n")
			path, _ := filepath.Abs(tt.file)
			w := exec.Command(tool, path, "--url", s.URL, "--operation", "count-words")
			w.Stdout, w.Stderr = os.Stderr, os.Stderr
			if err := w.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { w.Process.Signal(syscall.SIGTERM); w.Wait() }()
			var ids []string
			for _, text := range []string{"one two three", "a b c d e", ""} {
				ids = append(ids, submit(t, s, "count-words", map[string]string{"text": text}).ID)
			}
			for i, want := range []int{3, 5, 0} {
				j := waitJob(t, s, ids[i])
				var res struct {
					Words int
					By    string
				}
				json.Unmarshal(j.Result, &res)
				if j.Status != errand.StatusSucceeded || res.Words != want || res.By != tt.name || j.Progress == nil || j.Progress.Percent != 75 {
					t.Fatalf("job %d by the %s worker: %s %s progress %+v, want %d words", i, tt.name, j.Status, j.Result, j.Progress, want)
				}
			}
		})
	}
}
