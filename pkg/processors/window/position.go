package window

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/shardwatch/shardwatch/pkg/records"
)

// Position is a record's place in its shard: the Kinesis sequence number
// (a decimal string of up to 128 bits) and the index of the user record
// inside a KPL aggregate. The zero Position is before every record.
type Position struct {
	Seq string
	Sub int64
}

// PositionOf returns the position of the record described by m.
func PositionOf(m *records.Meta) Position {
	return Position{Seq: m.SequenceNumber, Sub: m.SubSequence}
}

// IsZero reports whether p is the zero Position.
func (p Position) IsZero() bool { return p.Seq == "" && p.Sub == 0 }

// Compare returns -1, 0 or +1 as p is before, equal to or after q.
// Sequence numbers compare as unsigned integers without allocating:
// leading zeros are ignored, then the longer number is larger, then the
// digits decide.
func (p Position) Compare(q Position) int {
	a, b := p.Seq, q.Seq
	// Fast path (once per record and processor): a shard's sequence
	// numbers have the same length and no leading zero.
	if len(a) != len(b) || len(a) == 0 || a[0] == '0' || b[0] == '0' {
		a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	if c := strings.Compare(a, b); c != 0 {
		return c
	}
	switch {
	case p.Sub < q.Sub:
		return -1
	case p.Sub > q.Sub:
		return 1
	}
	return 0
}

// Clone returns p with its own copy of Seq (which may alias a batch
// payload).
func (p Position) Clone() Position { return Position{Seq: strings.Clone(p.Seq), Sub: p.Sub} }

// String encodes p as "<seq>#<sub zero-padded to 10 digits>" (the
// dead-letter table's sort key format); "" for the zero Position.
func (p Position) String() string {
	if p.IsZero() {
		return ""
	}
	return fmt.Sprintf("%s#%010d", p.Seq, p.Sub)
}

// ErrBadPosition is returned by ParsePosition for malformed input.
var ErrBadPosition = errors.New("malformed position")

// ParsePosition decodes the String form; "" is the zero Position.
func ParsePosition(s string) (Position, error) {
	if s == "" {
		return Position{}, nil
	}
	seq, sub, ok := strings.Cut(s, "#")
	if !ok || seq == "" || strings.Trim(seq, "0123456789") != "" {
		return Position{}, fmt.Errorf("%w: %q", ErrBadPosition, s)
	}
	n, err := strconv.ParseInt(sub, 10, 64)
	if err != nil || n < 0 {
		return Position{}, fmt.Errorf("%w: %q", ErrBadPosition, s)
	}
	return Position{Seq: seq, Sub: n}, nil
}
