// cfbench: one SSE fan-out client for errand and Centrifugo (uni_sse), so the
// two servers are measured by the same code: N subscribers on one channel,
// M events published over each server's HTTP API, deliveries a second and
// publish-to-receive p50/p99 (on 100 sampled subscribers).
package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	target     = flag.String("target", "errand", "errand or centrifugo")
	base       = flag.String("url", "http://127.0.0.1:8080", "server")
	subs       = flag.Int("subs", 10000, "subscribers")
	events     = flag.Int("events", 100, "events")
	publishers = flag.Int("publishers", 4, "publishers at once")
	apiKey     = flag.String("apikey", "apikey", "centrifugo http_api.key")
	secret     = flag.String("secret", "secret", "centrifugo client.token.hmac_secret_key")
	channel    = flag.String("channel", "bench", "channel")
)

type conn struct {
	c       net.Conn
	r       *bufio.Reader
	n       atomic.Int64
	sample  bool
	latency []time.Duration
}

func token() string {
	enc := base64.RawURLEncoding
	h := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	p := enc.EncodeToString([]byte(fmt.Sprintf(`{"sub":"bench","channels":[%q],"exp":%d}`, *channel, time.Now().Add(time.Hour).Unix())))
	m := hmac.New(sha256.New, []byte(*secret))
	m.Write([]byte(h + "." + p))
	return h + "." + p + "." + enc.EncodeToString(m.Sum(nil))
}

func path() string {
	if *target == "centrifugo" {
		return "/connection/uni_sse?cf_connect=" + url.QueryEscape(`{"token":"`+token()+`"}`)
	}
	return "/v1/channels/" + *channel + "/events"
}

func dial(host, p string) (*conn, error) {
	c, err := net.DialTimeout("tcp", host, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte("GET " + p + " HTTP/1.1\r\nHost: " + host + "\r\nAccept: text/event-stream\r\n\r\n")); err != nil {
		c.Close()
		return nil, err
	}
	s := &conn{c: c, r: bufio.NewReaderSize(c, 8<<10)}
	resp, err := http.ReadResponse(s.r, nil)
	if err != nil || resp.StatusCode != 200 {
		c.Close()
		return nil, fmt.Errorf("subscribe: %v %v", err, resp)
	}
	return s, nil
}

// read counts data lines that carry a published event (its "t" stamp).
func (s *conn) read() {
	for {
		line, err := s.r.ReadSlice('\n')
		if err != nil {
			return
		}
		i := bytes.Index(line, []byte(`"t":`))
		if !bytes.HasPrefix(line, []byte("data:")) || i < 0 {
			continue
		}
		s.n.Add(1)
		if s.sample {
			j := i + 4
			k := j
			for k < len(line) && line[k] >= '0' && line[k] <= '9' {
				k++
			}
			if t, err := strconv.ParseInt(string(line[j:k]), 10, 64); err == nil {
				s.latency = append(s.latency, time.Since(time.Unix(0, t)))
			}
		}
	}
}

func publishOne(hc *http.Client, i int) error {
	payload := fmt.Sprintf(`{"n":%d,"t":%d}`, i, time.Now().UnixNano())
	var req *http.Request
	if *target == "centrifugo" {
		req, _ = http.NewRequest("POST", *base+"/api/publish", strings.NewReader(`{"channel":"`+*channel+`","data":`+payload+`}`))
		req.Header.Set("X-API-Key", *apiKey)
	} else {
		req, _ = http.NewRequest("POST", *base+"/v1/channels/"+*channel+"/events", strings.NewReader(`{"type":"tick","data":`+payload+`}`))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 || bytes.Contains(b, []byte(`"error"`)) {
		return fmt.Errorf("publish: %d %s", resp.StatusCode, b)
	}
	return nil
}

func main() {
	flag.Parse()
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	lim.Cur = lim.Max
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	u, _ := url.Parse(*base)
	p := path()
	conns := make([]*conn, *subs)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dial(u.Host, p)
			if err != nil {
				if failed.Add(1) == 1 {
					fmt.Fprintln(os.Stderr, err)
				}
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		fmt.Fprintf(os.Stderr, "%d subscribes failed\n", failed.Load())
		os.Exit(1)
	}
	for i, c := range conns {
		c.sample = i < 100
		wg.Add(1)
		go func() { defer wg.Done(); c.read() }()
	}
	time.Sleep(500 * time.Millisecond)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *publishers}}
	start := time.Now()
	var pw sync.WaitGroup
	for k := range *publishers {
		pw.Add(1)
		go func() {
			defer pw.Done()
			for i := k; i < *events; i += *publishers {
				if err := publishOne(hc, i); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
			}
		}()
	}
	pw.Wait()
	want := int64(*subs) * int64(*events)
	var got int64
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		got = 0
		for _, c := range conns {
			got += c.n.Load()
		}
		if got >= want {
			break
		}
	}
	el := time.Since(start).Seconds()
	for _, c := range conns {
		c.c.Close()
	}
	wg.Wait()
	var lat []time.Duration
	for _, c := range conns {
		lat = append(lat, c.latency...)
	}
	slices.Sort(lat)
	pct := func(q float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
	}
	out, _ := json.Marshal(map[string]any{"target": *target, "subscribers": *subs, "events": *events, "deliveries": got,
		"missing": want - got, "seconds": el, "deliveries_per_second": float64(got) / el, "p50_ms": pct(0.5), "p99_ms": pct(0.99)})
	fmt.Println(string(out))
}
