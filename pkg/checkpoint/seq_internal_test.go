package checkpoint

import (
	"errors"
	"math/big"
	"testing"
)

func TestCheckAdvance(t *testing.T) {
	tests := []struct {
		cur, want string
		err       error
	}{
		{"", "1", nil},
		{"", ShardEnd, nil},
		{"9", "10", nil},
		{"10", "9", ErrCheckpointBackwards},
		{"10", "10", nil},
		{"0010", "9", ErrCheckpointBackwards},
		{"10", "0011", nil},
		{ShardEnd, ShardEnd, nil},
		{ShardEnd, "99", ErrShardEnded},
		{"5", "", ErrInvalidSequence},
		{"5", "-6", ErrInvalidSequence},
		{"5", "6e3", ErrInvalidSequence},
		{"garbage", "6", nil}, // a broken stored value must not wedge the shard
	}
	for _, tc := range tests {
		if err := checkAdvance(tc.cur, tc.want); !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("checkAdvance(%q, %q) = %v, want %v", tc.cur, tc.want, err, tc.err)
		}
	}
}

func FuzzCompareSeq(f *testing.F) {
	f.Add("9", "10")
	f.Add("49590338271490256608559692538361571095921575989136588802", "49590338271490256608559692538361571095921575989136588898")
	f.Add("000", "0")
	f.Add("", "1")
	f.Fuzz(func(t *testing.T, a, b string) {
		got, ok := compareSeq(a, b)
		x, okx := new(big.Int).SetString(a, 10)
		y, oky := new(big.Int).SetString(b, 10)
		valid := isDigits(a) && isDigits(b)
		if ok != valid {
			t.Fatalf("compareSeq(%q, %q) ok = %v, want %v", a, b, ok, valid)
		}
		if !ok || !okx || !oky {
			return
		}
		if want := x.Cmp(y); got != want {
			t.Fatalf("compareSeq(%q, %q) = %d, big.Int says %d", a, b, got, want)
		}
	})
}

func BenchmarkCompareSeq(b *testing.B) {
	x := "49590338271490256608559692538361571095921575989136588802"
	y := "49590338271490256608559692538361571095921575989136588898"
	b.ReportAllocs()
	for b.Loop() {
		compareSeq(x, y)
	}
}
