package records

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestJSONSpecial8 checks the SWAR test against the obvious loop, for
// every byte value at every position and for random words.
func TestJSONSpecial8(t *testing.T) {
	naive := func(x uint64) bool {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], x)
		for _, c := range b {
			if c == '"' || c == '\\' || c < 0x20 {
				return true
			}
		}
		return false
	}
	check := func(x uint64) {
		if got, want := jsonSpecial8(x), naive(x); got != want {
			t.Fatalf("jsonSpecial8(%#016x) = %v, want %v", x, got, want)
		}
	}
	for pos := range 8 {
		for c := range 256 {
			b := []byte("aaaaaaaa")
			b[pos] = byte(c)
			check(binary.LittleEndian.Uint64(b))
			for i := range b {
				if i != pos {
					b[i] = 0xff
				}
			}
			check(binary.LittleEndian.Uint64(b))
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		check(rng.Uint64())
		// Mostly printable words, where false positives would hide.
		var b [8]byte
		for i := range b {
			b[i] = byte(0x20 + rng.IntN(0x60))
		}
		check(binary.LittleEndian.Uint64(b[:]))
	}
}
