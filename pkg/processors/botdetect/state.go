package botdetect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
)

// Per-window state of one shard: a counter block per client IP, in the
// order IPs first appeared, so an IP always lives in the same partial
// chunk (chunkIPs IPs each) and only changed chunks are rewritten.
//
// Item-size budget (DynamoDB items are at most 400 KB): an encoded IP
// takes at most 1+maxIPLen + 6*10 (varints) + 1 + 4*3 (table indexes,
// profile verdict) + 32 (sketch) = 170 bytes, so a chunk of 2,000 IPs
// stays under 340 KB,
// plus the host and crawler-name tables (maxTable entries of at most
// maxTableStr bytes, ~34 KB) kept in the first chunk.
const (
	chunkIPs    = 2000
	maxIPLen    = 64
	maxTable    = 256
	maxTableStr = 128
)

// ipStat is what one shard knows about one client IP in one window.
type ipStat struct {
	Requests    int64
	Bytes       int64
	BotRequests int64 // requests with a bot User-Agent (class bot)
	LibRequests int64 // requests with a library User-Agent (HTTP client, SDK, feed reader, unfurler)
	Assets      int64 // requests for static assets (CSS, JS, images, fonts)
	Referred    int64 // requests with a referer
	// PScore is the highest profile score (x100) seen in this window;
	// PSignals the profile signals of a flagging verdict (0: the profile
	// did not flag in this window).
	PScore   uint16
	PSignals uint16
	Robots   bool // fetched /robots.txt
	NoRef    bool // made requests without a referer
	Paths    pathSketch
	Host     uint16 // index into the window's host table (0: none)
	UA       uint16 // index into the window's crawler-name table
}

// winState is one window's state on one shard.
type winState struct {
	index  map[string]int32 // client IP -> position in ips
	ips    []string
	stats  []ipStat
	hosts  strTable
	names  strTable
	totals totals
	// touched lists the IPs changed since the last partial or delta
	// written; seen marks them, by position.
	touched []int32
	seen    []bool
	// Delta bookkeeping of an open window (see emit): the generation of
	// the base this lease wrote ("" = none yet), the last delta's number,
	// and the deflated bytes of the base and of the deltas since.
	gen                   string
	seq                   int
	baseBytes, deltaBytes int
}

// totals are a shard's window-wide counters.
type totals struct {
	Requests    int64
	BotRequests int64
	LibRequests int64
	// Overflow counts requests of IPs not tracked because the window
	// already held max_ips IPs (or the IP text was implausibly long).
	Overflow int64
}

func newWinState() *winState {
	return &winState{index: map[string]int32{}, hosts: newStrTable(), names: newStrTable()}
}

// stat returns the state of ip, adding it when new and there is room.
// ip may alias a batch payload: it is cloned on insert only.
func (s *winState) stat(ip string, maxIPs int) *ipStat {
	if i, ok := s.index[ip]; ok {
		s.touch(i)
		return &s.stats[i]
	}
	if len(s.ips) >= maxIPs || len(ip) > maxIPLen {
		return nil
	}
	i := int32(len(s.ips))
	ip = strings.Clone(ip)
	s.index[ip] = i
	s.ips = append(s.ips, ip)
	s.stats = append(s.stats, ipStat{})
	s.seen = append(s.seen, false)
	s.touch(i)
	return &s.stats[i]
}

func (s *winState) touch(i int32) {
	if !s.seen[i] {
		s.seen[i] = true
		s.touched = append(s.touched, i)
	}
}

// untouch forgets the changes (they were written).
func (s *winState) untouch() {
	for _, i := range s.touched {
		s.seen[i] = false
	}
	s.touched = s.touched[:0]
}

func (s *winState) chunks() int { return max(1, (len(s.ips)+chunkIPs-1)/chunkIPs) }

// strTable interns a small set of strings (hosts, crawler names); index 0
// is "" and a full table maps new strings to 0.
type strTable struct {
	idx  map[string]uint16
	strs []string
}

func newStrTable() strTable { return strTable{idx: map[string]uint16{"": 0}, strs: []string{""}} }

// id returns the index of s, interning a copy when new.
func (t *strTable) id(s string) uint16 {
	if i, ok := t.idx[s]; ok {
		return i
	}
	if len(t.strs) >= maxTable || len(s) > maxTableStr {
		return 0
	}
	s = strings.Clone(s)
	i := uint16(len(t.strs))
	t.idx[s] = i
	t.strs = append(t.strs, s)
	return i
}

// load appends strs (a stored table, without the leading "") so that
// stored indexes stay valid.
func (t *strTable) load(strs []string) {
	for _, s := range strs {
		if _, dup := t.idx[s]; !dup {
			t.idx[s] = uint16(len(t.strs))
		}
		t.strs = append(t.strs, s)
	}
}

// pathSketch estimates the number of distinct paths by linear counting
// over 256 bits: about +-10% at 50 paths, mergeable by OR, a fixed 32
// bytes per IP.
type pathSketch [4]uint64

func (p *pathSketch) add(path string) {
	b := pathHash(path) & 255
	p[b>>6] |= 1 << (b & 63)
}

// pathHash is a fixed-seed 64-bit hash (8 bytes per step, then a
// murmur3-style finaliser): maphash's seed is random per process, and
// every worker and every restart must map a path to the same bit.
func pathHash(s string) uint64 {
	const m = 0x9E3779B97F4A7C15
	h := uint64(len(s)) * m
	for len(s) >= 8 {
		w := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		h = (h ^ w) * m
		h ^= h >> 29
		s = s[8:]
	}
	var tail uint64
	for i := 0; i < len(s); i++ {
		tail |= uint64(s[i]) << (8 * i)
	}
	h = (h ^ tail) * m
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}

func (p *pathSketch) merge(q pathSketch) {
	for i := range p {
		p[i] |= q[i]
	}
}

func (p *pathSketch) bits() int {
	n := 0
	for _, w := range p {
		n += bits.OnesCount64(w)
	}
	return n
}

// bitsFor returns how many set bits make estimate() reach n.
func bitsFor(n int) int {
	for k := 0; k < 256; k++ {
		if (&pathSketch{}).estimateBits(k) >= float64(n) {
			return k
		}
	}
	return 256
}

// estimate returns the estimated number of distinct paths added.
func (p *pathSketch) estimate() float64 { return p.estimateBits(p.bits()) }

func (*pathSketch) estimateBits(set int) float64 {
	const m = 256
	if set == m {
		return m * math.Log(m) // saturated: at least this many
	}
	return m * math.Log(m/float64(m-set))
}

// Binary chunk encoding (attribute "state", type B): a version byte, then
// per IP: uvarint length + IP text, uvarints Requests, Bytes,
// BotRequests, Host, UA, (version 2:) LibRequests, Assets, Referred,
// PScore, PSignals, then a flags byte, and the 32-byte sketch when NoRef.
// Version 1 chunks (before the profile) still decode.
const (
	stateVersion   = 2
	stateVersionV1 = 1
)

const (
	flagRobots = 1 << iota
	flagNoRef
)

// errBadState marks a corrupt or foreign "state" attribute.
var errBadState = errors.New("malformed bot state")

func appendChunk(dst []byte, ips []string, stats []ipStat) []byte {
	dst = append(dst, stateVersion)
	dst = binary.AppendUvarint(dst, uint64(len(ips)))
	for i, ip := range ips {
		st := &stats[i]
		dst = binary.AppendUvarint(dst, uint64(len(ip)))
		dst = append(dst, ip...)
		dst = binary.AppendUvarint(dst, uint64(st.Requests))
		dst = binary.AppendUvarint(dst, uint64(st.Bytes))
		dst = binary.AppendUvarint(dst, uint64(st.BotRequests))
		dst = binary.AppendUvarint(dst, uint64(st.Host))
		dst = binary.AppendUvarint(dst, uint64(st.UA))
		dst = binary.AppendUvarint(dst, uint64(st.LibRequests))
		dst = binary.AppendUvarint(dst, uint64(st.Assets))
		dst = binary.AppendUvarint(dst, uint64(st.Referred))
		dst = binary.AppendUvarint(dst, uint64(st.PScore))
		dst = binary.AppendUvarint(dst, uint64(st.PSignals))
		var flags byte
		if st.Robots {
			flags |= flagRobots
		}
		if st.NoRef {
			flags |= flagNoRef
		}
		dst = append(dst, flags)
		if st.NoRef {
			for _, w := range st.Paths {
				dst = binary.LittleEndian.AppendUint64(dst, w)
			}
		}
	}
	return dst
}

// decodeChunk calls f for every IP in an encoded chunk.
func decodeChunk(b []byte, f func(ip string, st ipStat)) error {
	if len(b) == 0 || (b[0] != stateVersion && b[0] != stateVersionV1) {
		return fmt.Errorf("%w: version", errBadState)
	}
	nv := 5
	if b[0] == stateVersion {
		nv = 10
	}
	b = b[1:]
	n, b, err := uvarint(b)
	if err != nil {
		return err
	}
	for range n {
		var l uint64
		if l, b, err = uvarint(b); err != nil {
			return err
		}
		if l > maxIPLen || uint64(len(b)) < l {
			return fmt.Errorf("%w: ip length", errBadState)
		}
		ip := string(b[:l])
		b = b[l:]
		var v [10]uint64
		for i := range v[:nv] {
			if v[i], b, err = uvarint(b); err != nil {
				return err
			}
		}
		if v[3] > math.MaxUint16 || v[4] > math.MaxUint16 || v[8] > math.MaxUint16 || v[9] > math.MaxUint16 ||
			slices.ContainsFunc([]uint64{v[0], v[1], v[2], v[5], v[6], v[7]}, func(x uint64) bool { return x > math.MaxInt64 }) {
			return fmt.Errorf("%w: counter range", errBadState)
		}
		if len(b) < 1 {
			return fmt.Errorf("%w: truncated", errBadState)
		}
		flags := b[0]
		b = b[1:]
		st := ipStat{
			Requests: int64(v[0]), Bytes: int64(v[1]), BotRequests: int64(v[2]),
			Host: uint16(v[3]), UA: uint16(v[4]),
			LibRequests: int64(v[5]), Assets: int64(v[6]), Referred: int64(v[7]),
			PScore: uint16(v[8]), PSignals: uint16(v[9]),
			Robots: flags&flagRobots != 0, NoRef: flags&flagNoRef != 0,
		}
		if st.NoRef {
			if len(b) < 32 {
				return fmt.Errorf("%w: truncated sketch", errBadState)
			}
			for i := range st.Paths {
				st.Paths[i] = binary.LittleEndian.Uint64(b[8*i:])
			}
			b = b[32:]
		}
		f(ip, st)
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: trailing bytes", errBadState)
	}
	return nil
}

func uvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, fmt.Errorf("%w: varint", errBadState)
	}
	return v, b[n:], nil
}
