package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/errandhq/errand"
)

// smallDisk mounts a tmpfs of size bytes (a filesystem that can really fill
// up) and returns its path; it is unmounted when the test ends. Mounting needs
// root: without it the test is skipped, except under CI=true, where it fails.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("cannot mount a tmpfs to fill (needs root): %v %s", err, out)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file into dir until the filesystem has no space left.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "ballast")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			t.Fatalf("fill %s: %v", dir, err)
		}
	}
	for _, n := range []int{4096, 512, 1} { // the last blocks
		for {
			if _, err := f.Write(chunk[:n]); err != nil {
				break
			}
		}
	}
	return path
}

// TestE2EDiskFull (issue 18, item 9): the SQLite store on a filesystem that
// fills up. Writes answer 507 storage_full with Retry-After (artifact uploads
// too, leaving no partial file), /readyz answers 503 saying why; once space is
// freed, readiness and writes come back by themselves; every job acknowledged
// before, during and after is there — also after a kill -9 — and no job that was
// refused is.
func TestE2EDiskFull(t *testing.T) {
	t.Parallel()
	disk := smallDisk(t, 8<<20)
	s := startServerEnv(t, testConfig, false, "ERRAND_STORE=sqlite://"+filepath.Join(disk, "errand.db"))
	acked := map[string]bool{}
	submit := func(input string) (int, []byte, string) {
		code, h, b := s.do("POST", "/v1/jobs", `{"operation":"echo","input":`+input+`}`)
		var j struct{ ID string }
		if code == 202 {
			mustJSON(t, b, &j)
			acked[j.ID] = true
		}
		return code, b, h.Get("Retry-After")
	}
	for i := range 20 {
		if code, b, _ := submit(fmt.Sprint(i)); code != 202 {
			t.Fatalf("submit %d with space: %d %s", i, code, b)
		}
	}
	lease := leaseOne(t, s)
	delete(acked, "") // leaseOne's job is in the list too; it is found below by listing
	ballast := fill(t, disk)

	pad := `"` + strings.Repeat("x", 16<<10) + `"`
	var code int
	var body []byte
	var retry string
	for i := 0; i < 500; i++ {
		if code, body, retry = submit(pad); code != 202 {
			break
		}
	}
	var p errand.Problem
	_ = json.Unmarshal(body, &p)
	if code != 507 || p.Code != errand.ESTORAGEFULL || retry == "" {
		t.Fatalf("submit on a full disk: %d %s (Retry-After %q); want 507 storage_full with Retry-After", code, body, retry)
	}
	waitReady(t, s, 503, errand.ESTORAGEFULL)
	code, _, body = s.do("PUT", "/v1/leases/"+lease+"/artifacts/big.bin", strings.Repeat("a", 1<<20), "Content-Type", "application/octet-stream")
	_ = json.Unmarshal(body, &p)
	if code != 507 || p.Code != errand.ESTORAGEFULL {
		t.Fatalf("artifact upload on a full disk: %d %s; want 507 storage_full", code, body)
	}
	leftovers, _ := filepath.Glob(filepath.Join(disk, "artifacts", "*", ".upload-*"))
	if len(leftovers) > 0 {
		t.Fatalf("a failed upload left %v", leftovers)
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	waitReady(t, s, 200, "ready")
	if code, b, _ := submit(pad); code != 202 {
		t.Fatalf("submit after space came back: %d %s", code, b)
	}
	if code, b := put(s, lease); code != 201 {
		t.Fatalf("artifact upload after space came back: %d %s", code, b)
	}
	checkJobs(t, s, acked)
	s.kill()
	s.start()
	checkJobs(t, s, acked)
}

// put uploads a small artifact on lease.
func put(s *server, lease string) (int, []byte) {
	code, _, b := s.do("PUT", "/v1/leases/"+lease+"/artifacts/small.txt", "hello", "Content-Type", "text/plain")
	return code, b
}

// waitReady polls /readyz until it answers status with want in its body.
func waitReady(t *testing.T, s *server, status int, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, b := s.do("GET", "/readyz", "")
		if code == status && strings.Contains(string(b), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: %d %s; want %d saying %q", code, b, status, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkJobs checks that every acknowledged job is there and that the store
// holds no echo job that was not acknowledged (besides the one leased).
func checkJobs(t *testing.T, s *server, acked map[string]bool) {
	t.Helper()
	for id := range acked {
		if code, _, b := s.do("GET", "/v1/jobs/"+id, ""); code != 200 {
			t.Fatalf("acknowledged job %s: %d %s", id, code, truncate(b))
		}
	}
	seen, extra := 0, 0
	for cursor := ""; ; {
		_, _, b := s.do("GET", "/v1/jobs?limit=100&cursor="+cursor, "")
		var page struct {
			Jobs       []struct{ ID string } `json:"jobs"`
			NextCursor *string               `json:"next_cursor"`
		}
		mustJSON(t, b, &page)
		for _, j := range page.Jobs {
			if acked[j.ID] {
				seen++
			} else {
				extra++
			}
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	if seen != len(acked) || extra != 1 { // the leased job was submitted by leaseOne
		t.Fatalf("listed %d of %d acknowledged jobs and %d others; want all and 1 (the leased one)", seen, len(acked), extra)
	}
}
