package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/client"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func newWatchCmd(f *clientFlags, stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "watch <job-id>",
		Short: "Follow a job until it finishes: a progress bar on a terminal, one line per event otherwise",
		Long: `Follow a job's events (a Server-Sent Events stream that resumes by itself after
a dropped connection) until the job finishes. On a terminal it draws a progress bar;
piped, it prints one line per event (with --output json, one JSON event per line).
It exits 0 when the job succeeded and 1 when it failed or was canceled.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			var show func(client.Event)
			done := func() {}
			switch {
			case f.output == "json":
				enc := json.NewEncoder(stdout)
				show = func(e client.Event) { _ = enc.Encode(e) }
			case isTerminal(stdout):
				show, done = barView(stdout)
			default:
				show = func(e client.Event) { fmt.Fprintln(stdout, eventLine(e)) }
			}
			var last client.Event
			err = c.Watch(cmd.Context(), args[0], func(e client.Event) error { show(e); last = e; return nil })
			done()
			if err != nil {
				return err
			}
			return finalStatus(last)
		},
	}
	return cmd
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// eventLine is an event as one line of text.
func eventLine(e client.Event) string {
	ts := e.Time.UTC().Format("15:04:05.000")
	var d struct {
		Attempt  int             `json:"attempt"`
		Worker   string          `json:"worker"`
		Percent  float64         `json:"percent"`
		Message  string          `json:"message"`
		RunAt    time.Time       `json:"run_at"`
		Status   string          `json:"status"`
		Result   json.RawMessage `json:"result"`
		Error    *errand.Problem `json:"error"`
		Reason   string          `json:"reason"`
		Artifact []errand.Artifact
	}
	_ = json.Unmarshal(e.Data, &d)
	switch e.Type {
	case errand.EventJobCreated:
		return fmt.Sprintf("%s %s %s", ts, e.Type, d.Status)
	case errand.EventJobStarted:
		return fmt.Sprintf("%s %s attempt %d by %s", ts, e.Type, d.Attempt, or(d.Worker, "a worker"))
	case errand.EventJobProgress:
		return fmt.Sprintf("%s %s %.0f%% %s", ts, e.Type, d.Percent, d.Message)
	case errand.EventJobRetrying:
		why := d.Reason
		if d.Error != nil {
			why = d.Error.Code + ": " + d.Error.Detail
		}
		return fmt.Sprintf("%s %s after attempt %d at %s (%s)", ts, e.Type, d.Attempt, d.RunAt.UTC().Format("15:04:05"), why)
	case errand.EventJobSucceeded:
		return fmt.Sprintf("%s %s %s", ts, e.Type, d.Result)
	case errand.EventJobFailed, errand.EventJobCanceled:
		if d.Error != nil {
			return fmt.Sprintf("%s %s %s: %s", ts, e.Type, d.Error.Code, d.Error.Detail)
		}
		return fmt.Sprintf("%s %s", ts, e.Type)
	}
	return fmt.Sprintf("%s %s %s", ts, e.Type, e.Data)
}

// barView draws a progress bar that follows job.progress events.
func barView(w io.Writer) (func(client.Event), func()) {
	bar := progressbar.NewOptions(100, progressbar.OptionSetWriter(w), progressbar.OptionSetWidth(30),
		progressbar.OptionSetDescription("queued"), progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionSetElapsedTime(true), progressbar.OptionSetPredictTime(false),
		progressbar.OptionThrottle(50*time.Millisecond), progressbar.OptionSetRenderBlankState(true))
	show := func(e client.Event) {
		var d struct {
			Percent float64 `json:"percent"`
			Message string  `json:"message"`
		}
		_ = json.Unmarshal(e.Data, &d)
		switch e.Type {
		case errand.EventJobStarted:
			bar.Describe("running")
		case errand.EventJobProgress:
			bar.Describe(d.Message)
			_ = bar.Set(int(d.Percent))
		case errand.EventJobRetrying:
			bar.Describe("retrying")
			_ = bar.Set(0)
		case errand.EventJobSucceeded:
			bar.Describe("succeeded")
			_ = bar.Finish()
		case errand.EventJobFailed, errand.EventJobCanceled:
			bar.Describe(e.Type[len("job."):])
		}
	}
	return show, func() { fmt.Fprintln(w) }
}

// finalStatus is nil for a succeeded job and an error naming the failure otherwise.
func finalStatus(e client.Event) error {
	if e.Type == errand.EventJobSucceeded {
		return nil
	}
	var j errand.Job
	_ = json.Unmarshal(e.Data, &j)
	if j.Error != nil {
		return fmt.Errorf("job %s %s: %s: %s", j.ID, j.Status, j.Error.Code, j.Error.Detail)
	}
	return fmt.Errorf("job %s %s", j.ID, j.Status)
}
