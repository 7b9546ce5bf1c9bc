package telemetry

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"time"
)

// A sketch is a mergeable histogram of durations for usage percentiles: fixed
// log-scale bins, eight per doubling, from one microsecond up. Bin 0 holds
// durations under 1 µs; bin i ≥ 1 holds [2^((i-1)/8), 2^(i/8)) µs. A
// percentile is reported as its bin's geometric middle, so it is within
// 2^(1/16) − 1 ≈ 4.4 % of a duration observed at that rank. Bins are fixed,
// so sketches of several nodes and buckets merge by adding counts — exactly:
// the merge of sketches is the sketch of the union. 384 bins reach nine years.
//
// Stored sparse (only bins that hold something), as varints: the number of
// bins, then each bin's index (as the gap from the last) and count.
type sketch struct {
	bins []bin // by index, counts > 0
}

type bin struct {
	i uint16
	n uint64
}

// binsPerDoubling sets the resolution.
const binsPerDoubling = 8

// maxBin caps the index: 2^48 µs, about nine years, beyond any timeout.
const maxBin = 8 * 48

// binOf is the bin of d.
func binOf(d time.Duration) uint16 {
	us := float64(d) / float64(time.Microsecond)
	if us < 1 {
		return 0
	}
	i := int(math.Floor(math.Log2(us)*binsPerDoubling)) + 1
	return uint16(min(i, maxBin))
}

// middle is the duration a bin stands for: its bounds' geometric mean (0 for bin 0).
func middle(i uint16) time.Duration {
	if i == 0 {
		return 0
	}
	us := math.Exp2((float64(i) - 0.5) / binsPerDoubling)
	return time.Duration(us * float64(time.Microsecond))
}

// add counts one duration.
func (s *sketch) add(d time.Duration) { s.addBin(binOf(d), 1) }

func (s *sketch) addBin(i uint16, n uint64) {
	k, found := slices.BinarySearchFunc(s.bins, i, func(b bin, i uint16) int { return int(b.i) - int(i) })
	if found {
		s.bins[k].n += n
		return
	}
	s.bins = slices.Insert(s.bins, k, bin{i, n})
}

// merge adds o's counts to s.
func (s *sketch) merge(o *sketch) {
	for _, b := range o.bins {
		s.addBin(b.i, b.n)
	}
}

// count is how many durations s holds.
func (s *sketch) count() uint64 {
	var n uint64
	for _, b := range s.bins {
		n += b.n
	}
	return n
}

// quantile is the duration at q (0 < q ≤ 1): the smallest bin whose
// cumulative count reaches ⌈q·n⌉. ok is false for an empty sketch.
func (s *sketch) quantile(q float64) (time.Duration, bool) {
	n := s.count()
	if n == 0 {
		return 0, false
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for _, b := range s.bins {
		if seen += b.n; seen >= rank {
			return middle(b.i), true
		}
	}
	return middle(s.bins[len(s.bins)-1].i), true
}

// encode writes s sparse; nil for an empty sketch.
func (s *sketch) encode() []byte {
	if len(s.bins) == 0 {
		return nil
	}
	b := binary.AppendUvarint(nil, uint64(len(s.bins)))
	last := uint16(0)
	for _, x := range s.bins {
		b = binary.AppendUvarint(b, uint64(x.i-last))
		b = binary.AppendUvarint(b, x.n)
		last = x.i
	}
	return b
}

var errSketch = errors.New("usage histogram: malformed")

// decodeSketch reads what encode wrote (nil: an empty sketch).
func decodeSketch(b []byte) (*sketch, error) {
	s := &sketch{}
	if len(b) == 0 {
		return s, nil
	}
	in := b
	n, k := binary.Uvarint(b)
	if k <= 0 || n == 0 || n > maxBin+1 {
		return nil, errSketch
	}
	b = b[k:]
	last := uint64(0)
	for range n {
		gap, k1 := binary.Uvarint(b)
		if k1 <= 0 {
			return nil, errSketch
		}
		count, k2 := binary.Uvarint(b[k1:])
		if k2 <= 0 || count == 0 || last+gap > maxBin || (gap == 0 && len(s.bins) > 0) {
			return nil, errSketch
		}
		b = b[k1+k2:]
		last += gap
		s.bins = append(s.bins, bin{uint16(last), count})
	}
	if len(b) != 0 || !bytes.Equal(s.encode(), in) { // one encoding only (no padded varints)
		return nil, errSketch
	}
	return s, nil
}
