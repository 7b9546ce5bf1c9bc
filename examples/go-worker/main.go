// Command go-worker is a pull worker for the generate-report operation of
// examples/errand.yaml, written with errand's Go worker SDK.
//
//	go run ./examples/go-worker -url http://127.0.0.1:8080
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/errandhq/errand/worker"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080", "errand server")
	concurrency := flag.Int("concurrency", 4, "jobs at once")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	w, err := worker.New(worker.Config{URL: *url, Operations: []string{"generate-report"}, Concurrency: *concurrency}, report)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("working generate-report jobs from %s (Ctrl-C to stop)", *url)
	if err := w.Run(ctx); err != nil {
		log.Fatal(err)
	}
}

// report pretends to build a report in four steps, reporting progress.
func report(ctx context.Context, j *worker.Job) (any, error) {
	var in struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(j.Input, &in); err != nil {
		return nil, worker.Permanent(err)
	}
	for step, what := range []string{"querying", "aggregating", "rendering charts", "writing PDF"} {
		if err := j.Progress(ctx, float64(step*25), what); err != nil {
			return nil, err
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return map[string]string{"report": fmt.Sprintf("%s report for job %s", in.Type, j.ID)}, nil
}
