package errand

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"sync"
	"time"
)

// crockford is the Crockford base-32 alphabet: sortable, no I, L, O or U.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// IDGenerator makes prefixed, time-sortable ids: a UUIDv7 (48-bit millisecond time,
// then random bits, monotonic within a millisecond) in Crockford base 32, e.g.
// job_01JD8X3M5W2C6Q4T9ZB7NKRHFE. The zero value is ready to use.
type IDGenerator struct {
	mu     sync.Mutex
	lastMS uint64
	seq    uint16 // the 12-bit counter in rand_a
}

var defaultIDs IDGenerator

// NewID returns a new id with the given prefix (without the underscore).
func NewID(prefix string) string { return defaultIDs.New(prefix, time.Now()) }

// New returns a new id for time now.
func (g *IDGenerator) New(prefix string, now time.Time) string {
	var u [16]byte
	_, _ = rand.Read(u[6:])
	ms := uint64(now.UnixMilli())
	g.mu.Lock()
	if ms <= g.lastMS {
		ms = g.lastMS // clock went back or same millisecond: keep order with the counter
		g.seq++
		if g.seq > 0x0FFF {
			ms++
			g.seq = 0
		}
	} else {
		g.seq = binary.BigEndian.Uint16(u[6:8]) & 0x03FF // leave room to count up
	}
	g.lastMS = ms
	seq := g.seq
	g.mu.Unlock()
	binary.BigEndian.PutUint64(u[0:8], ms<<16)
	u[6] = 0x70 | byte(seq>>8)&0x0F
	u[7] = byte(seq)
	u[8] = u[8]&0x3F | 0x80 // RFC 9562 variant
	return prefix + "_" + encode128(u)
}

// FloorID returns the lowest id with prefix that a generator makes at t:
// every id made before t sorts below it, every id made at or after t not.
// Ids being time-ordered, it turns a time into a bound of a keyset page.
func FloorID(prefix string, t time.Time) string {
	var u [16]byte
	binary.BigEndian.PutUint64(u[0:8], uint64(max(t.UnixMilli(), 0))<<16)
	return prefix + "_" + encode128(u)
}

// encode128 writes 128 bits as 26 Crockford base-32 characters.
func encode128(u [16]byte) string {
	hi := binary.BigEndian.Uint64(u[0:8])
	lo := binary.BigEndian.Uint64(u[8:16])
	var b [26]byte
	for i := 25; i >= 0; i-- {
		b[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(b[:])
}

// ValidID reports whether s looks like an id errand made with prefix.
func ValidID(prefix, s string) bool {
	rest, ok := strings.CutPrefix(s, prefix+"_")
	if !ok || len(rest) != 26 || rest[0] > '7' {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if strings.IndexByte(crockford, rest[i]) < 0 {
			return false
		}
	}
	return true
}

// PageCursor returns the opaque cursor of the list page after the item with id
// (lists page newest first, by id).
func PageCursor(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("j1:" + id))
}

// ParsePageCursor reads a PageCursor of an id with prefix; "" is the first page.
func ParsePageCursor(prefix, c string) (string, error) {
	if c == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	id, ok := "", false
	if err == nil {
		id, ok = strings.CutPrefix(string(b), "j1:")
	}
	if !ok || !ValidID(prefix, id) {
		return "", Errorf(ECURSOR, "cursor is not one errand issued")
	}
	return id, nil
}
