package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/errandhq/errand"
)

// TestE2EDemo runs `errand demo` as a user would and follows the report flow to a
// PDF that pdfinfo reads.
func TestE2EDemo(t *testing.T) {
	t.Parallel()
	pdfinfo, err := exec.LookPath("pdfinfo")
	if err != nil {
		t.Fatalf("pdfinfo is needed to check the PDF (./test.sh installs poppler-utils): %v", err)
	}
	dir := t.TempDir()
	cmd := exec.Command(binary, "demo", "--listen", "127.0.0.1:0", "--dir", dir)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		t.Fatalf("no banner from errand demo")
	}
	m := regexp.MustCompile(`running at (http://\S+)`).FindStringSubmatch(sc.Text())
	if m == nil {
		t.Fatalf("banner %q has no URL", sc.Text())
	}
	go func() {
		for sc.Scan() {
		}
	}()
	s := &server{t: t, URL: m[1]}
	code, h, body := s.do("POST", "/generate-report", `{"type":"monthly"}`)
	var j errand.Job
	mustJSON(t, body, &j)
	if code != 202 || h.Get("Location") != "/v1/jobs/"+j.ID {
		t.Fatalf("POST /generate-report = %d %s", code, body)
	}
	sawProgress := false
	deadline := time.Now().Add(30 * time.Second)
	for !j.Status.Terminal() {
		if time.Now().After(deadline) {
			t.Fatalf("report not done in 30s: %s", j.Status)
		}
		time.Sleep(200 * time.Millisecond)
		_, _, body = s.do("GET", "/v1/jobs/"+j.ID, "")
		j = errand.Job{}
		mustJSON(t, body, &j)
		if j.Status == errand.StatusRunning && j.Progress != nil && j.Progress.Percent > 0 {
			sawProgress = true
		}
	}
	var res struct {
		ReportURL string `json:"report_url"`
	}
	json.Unmarshal(j.Result, &res)
	if j.Status != errand.StatusSucceeded || !sawProgress || res.ReportURL != "/v1/jobs/"+j.ID+"/artifacts/report.pdf" {
		t.Fatalf("report job: %s, progress seen %v, result %s", j.Status, sawProgress, j.Result)
	}
	code, h, pdf := s.do("GET", res.ReportURL, "")
	if code != 200 || h.Get("Content-Type") != "application/pdf" {
		t.Fatalf("download = %d %s", code, h.Get("Content-Type"))
	}
	path := filepath.Join(dir, "report.pdf")
	os.WriteFile(path, pdf, 0o600)
	info, err := exec.Command(pdfinfo, path).CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^Pages:\s+1$`).MatchString(string(info)) || !strings.Contains(string(info), "Sales report (monthly)") {
		t.Fatalf("pdfinfo: %v\n%s", err, info)
	}
}
