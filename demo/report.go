// Package demo is the report-generation example `errand demo` serves: the
// operation the async-API literature always uses. Its worker really renders a
// small PDF report, in steps, reporting progress, and stores it as an artifact.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"time"

	"github.com/errandhq/errand/worker"
	"github.com/go-pdf/fpdf"
)

// Config is the demo's errand.yaml.
const Config = `
dev: true
log: { level: warn, format: text }
operations:
  generate-report:
    description: Builds a monthly or weekly sales report as a PDF, in a few seconds.
    route: /generate-report
    input_schema:
      type: object
      required: [type]
      additionalProperties: false
      properties:
        type: { enum: [monthly, weekly], description: "which period the report covers" }
        region: { type: string, maxLength: 40 }
    timeout: 2m
    retry: { max_attempts: 3, initial: 1s, max: 10s }
    concurrency: 4
channels:
  "reports.*": { history: 1h, description: "Reports' news, for the dashboard's live tail (errand publish reports.monthly …)" }
`

// StepDelay is how long each of the report's steps takes (the demo is meant to be
// watched, so the work is slower than it needs to be).
var StepDelay = 700 * time.Millisecond

// input is what generate-report takes.
type input struct {
	Type   string `json:"type"`
	Region string `json:"region"`
}

// Report renders the report of a job: the worker.Handler of generate-report.
func Report(ctx context.Context, j *worker.Job) (any, error) {
	var in input
	if err := json.Unmarshal(j.Input, &in); err != nil {
		return nil, worker.Permanent(fmt.Errorf("input: %w", err))
	}
	if in.Region == "" {
		in.Region = "all regions"
	}
	rows := figures(j.ID, in.Type)
	steps := []string{"querying sales", "aggregating by product", "drawing the chart", "writing the PDF"}
	for i, step := range steps {
		if err := j.Progress(ctx, float64(i*100/len(steps)), step); err != nil {
			return nil, err
		}
		select {
		case <-time.After(StepDelay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	pdf, err := Render(in.Type, in.Region, rows, time.Now())
	if err != nil {
		return nil, err
	}
	if err := j.Artifact(ctx, "report.pdf", "application/pdf", bytes.NewReader(pdf)); err != nil {
		return nil, err
	}
	total := 0
	for _, r := range rows {
		total += r.Sales
	}
	return map[string]any{"report_url": j.Path() + "/artifacts/report.pdf", "type": in.Type, "region": in.Region,
		"products": len(rows), "total_sales": total, "bytes": len(pdf)}, nil
}

// row is one product's figure.
type row struct {
	Product string
	Sales   int
}

// figures makes up the period's sales, the same for the same job.
func figures(seed, kind string) []row {
	h := fnv.New64a()
	h.Write([]byte(seed))
	r := rand.New(rand.NewPCG(h.Sum64(), 42))
	scale := 100
	if kind == "monthly" {
		scale = 430
	}
	var rows []row
	for _, p := range []string{"Widgets", "Gadgets", "Sprockets", "Gizmos", "Doohickeys", "Thingamajigs"} {
		rows = append(rows, row{p, scale + r.IntN(scale*2)})
	}
	return rows
}

// Render draws the report: a title, a table and a bar chart.
func Render(kind, region string, rows []row, now time.Time) ([]byte, error) {
	f := fpdf.New("P", "mm", "A4", "")
	f.SetTitle(fmt.Sprintf("Sales report (%s)", kind), true)
	f.SetCreator("errand demo", true)
	f.SetCreationDate(now)
	f.AddPage()
	f.SetFont("Helvetica", "B", 20)
	f.CellFormat(0, 12, fmt.Sprintf("Sales report: %s", kind), "", 1, "L", false, 0, "")
	f.SetFont("Helvetica", "", 11)
	f.SetTextColor(90, 90, 90)
	f.CellFormat(0, 7, fmt.Sprintf("%s - generated %s by errand", region, now.UTC().Format("2 Jan 2006 15:04 MST")), "", 1, "L", false, 0, "")
	f.Ln(6)
	f.SetTextColor(0, 0, 0)
	f.SetFont("Helvetica", "B", 11)
	f.SetFillColor(230, 236, 245)
	f.CellFormat(90, 8, "Product", "1", 0, "L", true, 0, "")
	f.CellFormat(40, 8, "Units sold", "1", 1, "R", true, 0, "")
	f.SetFont("Helvetica", "", 11)
	best := 1
	for _, r := range rows {
		f.CellFormat(90, 8, r.Product, "1", 0, "L", false, 0, "")
		f.CellFormat(40, 8, fmt.Sprint(r.Sales), "1", 1, "R", false, 0, "")
		best = max(best, r.Sales)
	}
	f.Ln(10)
	f.SetFillColor(52, 101, 164)
	y := f.GetY()
	for i, r := range rows {
		w := 120 * float64(r.Sales) / float64(best)
		f.Rect(50, y+float64(i)*9, w, 6, "F")
		f.Text(12, y+float64(i)*9+4.5, r.Product)
	}
	var buf bytes.Buffer
	if err := f.Output(&buf); err != nil {
		return nil, fmt.Errorf("render PDF: %w", err)
	}
	return buf.Bytes(), nil
}
