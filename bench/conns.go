package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// Process is an errand server run as its own process, so its memory can be read
// apart from the load generator's.
type Process struct {
	cmd *exec.Cmd
	URL string
}

// StartProcess runs `binary serve --dev` with the configuration text in dir.
func StartProcess(binary, dir, config string, env ...string) (*Process, error) {
	path := filepath.Join(dir, "errand.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, "serve", "--dev", "--config", path)
	// Info level: the "listening" line (with the URL) is logged at info.
	cmd.Env = append(append(os.Environ(), "ERRAND_LOG__LEVEL=info"), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		var rec struct{ Msg, URL string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "listening" {
			go func() {
				for sc.Scan() {
				}
			}()
			return &Process{cmd: cmd, URL: rec.URL}, nil
		}
	}
	cmd.Process.Kill()
	return nil, fmt.Errorf("errand did not start: %v", cmd.Wait())
}

// Stop kills the process.
func (p *Process) Stop() { p.cmd.Process.Kill(); p.cmd.Wait() }

// RSS is the process's resident memory in bytes.
func (p *Process) RSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS")
}

// ConnsResult is the server memory idle subscribers cost.
type ConnsResult struct {
	Name         string  `json:"name"`
	Connections  int     `json:"connections"`
	RSSBefore    int64   `json:"rss_before_bytes"`
	RSSAfter     int64   `json:"rss_after_bytes"`
	BytesPerConn int64   `json:"bytes_per_connection"`
	PerGiB       float64 `json:"connections_per_gib"`
}

// IdleConns opens n idle subscriptions (kind "sse", "ws" or "graphql", a
// graphql-transport-ws subscription) to channel on p and
// measures how much the server's RSS grew.
func IdleConns(ctx context.Context, p *Process, kind, channel string, n int) (ConnsResult, error) {
	time.Sleep(500 * time.Millisecond)
	before, err := p.RSS()
	if err != nil {
		return ConnsResult{}, err
	}
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	switch kind {
	case "sse":
		conns, err := connectMany(p.URL, "/v1/channels/"+channel+"/events", n, 0)
		if err != nil {
			return ConnsResult{}, err
		}
		closers = append(closers, func() { closeAll(conns) })
	case "ws":
		for i := range n {
			c, err := dialWS(ctx, p.URL, channel, i)
			if err != nil {
				return ConnsResult{}, err
			}
			closers = append(closers, func() { c.CloseNow() })
		}
	case "graphql":
		for i := range n {
			c, err := dialSub(ctx, p.URL, ProtoGraphQL, channel, "", i)
			if err != nil {
				return ConnsResult{}, err
			}
			closers = append(closers, func() { c.c.CloseNow() })
		}
	}
	time.Sleep(3 * time.Second) // let the server settle (and collect)
	after, err := p.RSS()
	if err != nil {
		return ConnsResult{}, err
	}
	per := (after - before) / int64(n)
	return ConnsResult{Name: "idle " + kind + " subscribers", Connections: n, RSSBefore: before, RSSAfter: after,
		BytesPerConn: per, PerGiB: float64(1<<30) / float64(max(per, 1))}, nil
}

func dialWS(ctx context.Context, base, channel string, i int) (*websocket.Conn, error) {
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/v1/ws",
		&websocket.DialOptions{Subprotocols: []string{"errand.v1"}})
	if err != nil {
		return nil, err
	}
	msg := fmt.Sprintf(`{"op":"subscribe","id":"s%d","channel":%q}`, i, channel)
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		return nil, err
	}
	if _, _, err := c.Read(ctx); err != nil { // the ack
		return nil, err
	}
	return c, nil
}
