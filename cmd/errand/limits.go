package main

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/errandhq/errand/httpapi"
)

// fileLimit is the process's open-file limit (the soft one, which
// raiseFileLimit lifted to the hard one); 0 when unknown.
func fileLimit() uint64 {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) != nil {
		return 0
	}
	return r.Cur
}

// maxConnections is the cap on client connections: the configured one, else
// what the open-file limit leaves after a fifth of it (at least 128) for the
// store, outbound calls (webhooks, http targets, commands) and files, and after
// the health-check reserve. At least 16; 100,000 when the limit is unknown.
func maxConnections(configured int, fdLimit uint64) int {
	if configured > 0 {
		return configured
	}
	if fdLimit == 0 || fdLimit > math.MaxInt32 {
		return 100_000
	}
	n := int(fdLimit)
	return max(16, n-max(128, n/5)-httpapi.ConnReserve)
}

// cgroupMemoryMax reads the memory limit of the cgroup the process runs in
// under root ("/" but for tests): cgroup v2 memory.max of the process's own
// cgroup, else the v1 memory.limit_in_bytes. ok is false when there is none.
func cgroupMemoryMax(root string) (limit int64, ok bool) {
	var candidates []string
	if b, err := os.ReadFile(filepath.Join(root, "proc/self/cgroup")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if path, found := strings.CutPrefix(line, "0::"); found {
				candidates = append(candidates, filepath.Join(root, "sys/fs/cgroup", path, "memory.max"))
			}
		}
	}
	candidates = append(candidates, filepath.Join(root, "sys/fs/cgroup/memory.max"),
		filepath.Join(root, "sys/fs/cgroup/memory/memory.limit_in_bytes"))
	for _, f := range candidates {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		n, err := strconv.ParseInt(v, 10, 64)
		// "max" (v2), or v1's "no limit": a number near 2^63 rounded to pages.
		if v == "max" || err != nil || n <= 0 || n >= math.MaxInt64/2 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// cgroupShare is the part of the cgroup's memory.max the Go heap is held to:
// the rest is for what the runtime does not count (the binary, thread stacks
// outside the heap, the kernel's buffers charged to the cgroup).
const cgroupShare = 0.9

// memoryLimit chooses the Go runtime's soft memory limit, in bytes (0: none),
// and says where it came from: GOMEMLIMIT when set (env; the runtime applied it
// already and holds it as current), else the configured memory_limit, else a
// share of the cgroup's memory.max, else none.
func memoryLimit(configured int64, env string, current int64, cgroup func() (int64, bool)) (int64, string) {
	if env != "" {
		if current == math.MaxInt64 { // GOMEMLIMIT=off
			return 0, "GOMEMLIMIT"
		}
		return current, "GOMEMLIMIT"
	}
	if configured > 0 {
		return configured, "memory_limit"
	}
	if n, ok := cgroup(); ok {
		return int64(float64(n) * cgroupShare), "cgroup"
	}
	return 0, "none"
}

// applyMemoryLimit sets the soft memory limit memoryLimit chooses and logs it.
func applyMemoryLimit(log *slog.Logger, configured int64) {
	limit, source := memoryLimit(configured, os.Getenv("GOMEMLIMIT"), debug.SetMemoryLimit(-1),
		func() (int64, bool) { return cgroupMemoryMax("/") })
	if limit > 0 && source != "GOMEMLIMIT" {
		debug.SetMemoryLimit(limit)
	}
	if limit == 0 {
		log.Info("memory limit", "limit", "none", "source", source)
		return
	}
	log.Info("memory limit", "limit_bytes", limit, "limit", fmt.Sprintf("%.0fMiB", float64(limit)/(1<<20)), "source", source)
}
