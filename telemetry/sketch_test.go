package telemetry

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// errorBound is the sketch's promised relative error: 2^(1/16) − 1.
var errorBound = math.Exp2(1.0/16) - 1

// TestSketchQuantiles: for durations spread over nine decades, every
// percentile the sketch reports is within the error bound of the duration
// observed at that rank.
func TestSketchQuantiles(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 10, 1000, 100000} {
		var s sketch
		ds := make([]time.Duration, n)
		for i := range ds {
			ds[i] = time.Duration(math.Pow(10, 3+9*r.Float64())) // 1 µs … 1000 s
			s.add(ds[i])
		}
		slices.Sort(ds)
		for _, q := range []float64{0.01, 0.5, 0.9, 0.95, 0.99, 1} {
			got, ok := s.quantile(q)
			want := ds[max(int(math.Ceil(q*float64(n)))-1, 0)]
			if !ok || math.Abs(float64(got-want))/float64(want) > errorBound {
				t.Errorf("n=%d: quantile(%g) = %v, want %v within %.2f%%", n, q, got, want, 100*errorBound)
			}
		}
		if got := s.count(); got != uint64(n) {
			t.Errorf("count = %d, want %d", got, n)
		}
	}
}

// TestSketchEdges: sub-microsecond durations fall in bin 0, huge ones in the
// last; an empty sketch has no quantile and encodes to nothing.
func TestSketchEdges(t *testing.T) {
	var s sketch
	if _, ok := s.quantile(0.5); ok || s.encode() != nil {
		t.Fatal("an empty sketch reports a quantile or encodes to bytes")
	}
	s.add(0)
	s.add(500 * time.Nanosecond)
	s.add(-time.Second)
	if got, _ := s.quantile(1); got != 0 {
		t.Errorf("quantile of sub-µs durations = %v, want 0", got)
	}
	s.add(100 * 365 * 24 * time.Hour)
	if b := binOf(100 * 365 * 24 * time.Hour); b != maxBin {
		t.Errorf("binOf(100 years) = %d, want the last bin %d", b, maxBin)
	}
}

// TestSketchMerge: merging sketches is the sketch of all their durations, in
// any order, and survives encoding.
func TestSketchMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var all, a, b sketch
	for i := range 5000 {
		d := time.Duration(r.ExpFloat64() * float64(50*time.Millisecond))
		all.add(d)
		if i%3 == 0 {
			a.add(d)
		} else {
			b.add(d)
		}
	}
	da, err := decodeSketch(a.encode())
	if err != nil {
		t.Fatal(err)
	}
	db, err := decodeSketch(b.encode())
	if err != nil {
		t.Fatal(err)
	}
	var m sketch
	m.merge(db)
	m.merge(da)
	if !slices.Equal(m.bins, all.bins) {
		t.Errorf("merged sketch differs from the sketch of the union")
	}
	if !bytes.Equal(m.encode(), all.encode()) {
		t.Errorf("merged sketch encodes differently")
	}
}

// FuzzDecodeSketch: decoding never panics, and what decodes re-encodes to
// the same bytes.
func FuzzDecodeSketch(f *testing.F) {
	var s sketch
	for _, d := range []time.Duration{time.Millisecond, time.Second, time.Hour} {
		s.add(d)
	}
	f.Add(s.encode())
	f.Add([]byte{1, 0, 1})
	f.Add([]byte{2, 5, 1, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeSketch(b)
		if err != nil || len(b) == 0 {
			return
		}
		if again := got.encode(); !bytes.Equal(again, b) {
			t.Fatalf("decode(%x) re-encodes to %x", b, again)
		}
	})
}
