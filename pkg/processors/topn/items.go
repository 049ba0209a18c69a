package topn

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/processors/windowed"
)

// Result name in item keys: "topn#60s#<window start>".
const resultName = "topn"

// Attribute names of topn items (besides window's common ones).
const (
	attrRequests      = "requests"
	attrBytes         = "bytes"
	attrKeys          = "keys"
	attrOverflowReq   = "overflow_requests"
	attrOverflowBytes = "overflow_bytes"
	attrIPs           = "ips"   // partial: rows "ip\trequests\tbytes\n" (see encodeRows)
	attrHosts         = "hosts" // partial: rows as ips; global: rows as top_requests
	attrBoundReq      = "bound_requests"
	attrBoundBytes    = "bound_bytes"
	attrErrReq        = "err_requests"
	attrErrBytes      = "err_bytes"
	attrHostBoundReq  = "host_bound_requests"
	attrHostBoundB    = "host_bound_bytes"
	attrHostErrReq    = "host_err_requests"
	attrHostErrBytes  = "host_err_bytes"
	attrN             = "n"
	attrFinals        = "finals"
	attrTopRequests   = "top_requests" // global: rows "ip\trequests\tbytes\terr_requests\terr_bytes\n"
	attrTopBytes      = "top_bytes"
)

// Keys returns the item keys topn uses for windows of size.
func Keys(size time.Duration) window.Keys { return window.NewKeys(resultName, size) }

// PartialItem encodes p as the item of its window and shard.
func PartialItem(table string, keys window.Keys, p *Partial, expires time.Time) processors.Item {
	h := window.Header{
		PK: keys.Window(p.Start), SK: window.ShardSK(p.Shard), Kind: window.KindPartial, Shard: p.Shard,
		Start: p.Start, End: p.End, Pos: p.Pos, Final: p.Final, ExpiresAt: expires,
	}
	m := h.Attrs(16)
	encodePartial(windowed.FieldsOf(m), p)
	return processors.Item{Table: table, Key: h.PK + "|" + h.SK, Attrs: m}
}

// partialInts lists a partial's number fields.
func partialInts(p *Partial) []struct {
	name string
	v    *int64
} {
	return []struct {
		name string
		v    *int64
	}{
		{attrRequests, &p.Requests}, {attrBytes, &p.Bytes}, {attrKeys, &p.Keys},
		{attrOverflowReq, &p.OverflowRequests}, {attrOverflowBytes, &p.OverflowBytes},
		{attrBoundReq, &p.BoundRequests}, {attrBoundBytes, &p.BoundBytes},
		{attrErrReq, &p.ErrRequests}, {attrErrBytes, &p.ErrBytes},
		{attrHostBoundReq, &p.HostBoundRequests}, {attrHostBoundB, &p.HostBoundBytes},
		{attrHostErrReq, &p.HostErrRequests}, {attrHostErrBytes, &p.HostErrBytes},
	}
}

func encodePartial(f *windowed.Fields, p *Partial) {
	for _, x := range partialInts(p) {
		f.SetInt(x.name, *x.v)
	}
	f.SetBytes(attrIPs+window.Zipped, window.Deflate(encodeEntries(p.IPs)))
	f.SetBytes(attrHosts+window.Zipped, window.Deflate(encodeEntries(p.Hosts)))
}

func decodePartial(f *windowed.Fields) (Partial, error) {
	var p Partial
	var err error
	for _, x := range partialInts(&p) {
		if *x.v, err = f.Int(x.name); err != nil {
			return p, err
		}
	}
	for name, dst := range map[string]*[]Entry{attrIPs: &p.IPs, attrHosts: &p.Hosts} {
		var s string
		var err error
		if f.Has(name + window.Zipped) {
			var b []byte
			if b, err = f.Bytes(name + window.Zipped); err == nil {
				s, err = window.Inflate(b)
			}
		} else {
			s, err = f.Str(name)
		}
		if err == nil {
			*dst, err = parseEntries(s)
		}
		if err != nil {
			return p, fmt.Errorf("%s: %w", name, err)
		}
	}
	return p, nil
}

// ParsePartial decodes a PartialItem.
func ParsePartial(item map[string]types.AttributeValue) (Partial, error) {
	h, err := window.ParseHeader(item)
	if err != nil {
		return Partial{}, err
	}
	p, err := decodePartial(windowed.FieldsOf(item))
	p.Shard, p.Start, p.End, p.Pos, p.Final = h.Shard, h.Start, h.End, h.Pos, h.Final
	if err != nil {
		return p, fmt.Errorf("%s %s: %w", h.PK, h.SK, err)
	}
	return p, nil
}

// GlobalItem encodes g as the window's merged item (sort key "global").
// It is final when every merged partial was.
func GlobalItem(table string, keys window.Keys, g *Global, n int, pos window.Position, expires time.Time) processors.Item {
	h := window.Header{
		PK: keys.Window(g.Start), SK: window.GlobalSK, Kind: window.KindGlobal,
		Start: g.Start, End: g.End, Pos: pos, Final: g.Merged > 0 && g.Finals == g.Merged, ExpiresAt: expires,
	}
	m := h.Attrs(12)
	m[window.AttrMerged] = window.Int(int64(g.Merged))
	m[attrFinals] = window.Int(int64(g.Finals))
	encodeGlobal(windowed.FieldsOf(m), g, n)
	return processors.Item{Table: table, Key: h.PK + "|" + h.SK, Attrs: m}
}

func encodeGlobal(f *windowed.Fields, g *Global, n int) {
	f.SetInt(attrN, int64(n))
	f.SetInt(attrRequests, g.Requests)
	f.SetInt(attrBytes, g.Bytes)
	f.SetInt(attrKeys, g.Keys)
	f.SetInt(attrOverflowReq, g.OverflowRequests)
	f.SetInt(attrOverflowBytes, g.OverflowBytes)
	f.SetInt(attrBoundReq, g.BoundRequests)
	f.SetInt(attrBoundBytes, g.BoundBytes)
	f.SetStr(attrTopRequests, encodeRanked(g.TopRequests))
	f.SetStr(attrTopBytes, encodeRanked(g.TopBytes))
	f.SetStr(attrHosts, encodeRanked(g.Hosts))
}

// ParseGlobal decodes a GlobalItem (for `consumer query`).
func ParseGlobal(item map[string]types.AttributeValue) (Global, error) {
	h, err := window.ParseHeader(item)
	if err != nil {
		return Global{}, err
	}
	g := Global{Start: h.Start, End: h.End}
	merged, _ := window.GetInt(item, window.AttrMerged)
	finals, _ := window.GetInt(item, attrFinals)
	g.Merged, g.Finals = int(merged), int(finals)
	for name, dst := range map[string]*int64{
		attrRequests: &g.Requests, attrBytes: &g.Bytes, attrKeys: &g.Keys,
		attrOverflowReq: &g.OverflowRequests, attrOverflowBytes: &g.OverflowBytes,
		attrBoundReq: &g.BoundRequests, attrBoundBytes: &g.BoundBytes,
	} {
		*dst, _ = window.GetInt(item, name)
	}
	for name, dst := range map[string]*[]Ranked{attrTopRequests: &g.TopRequests, attrTopBytes: &g.TopBytes, attrHosts: &g.Hosts} {
		s, _ := window.GetStr(item, name)
		if *dst, err = parseRanked(s); err != nil {
			return g, fmt.Errorf("%s: %s: %w", h.PK, name, err)
		}
	}
	return g, nil
}

// encodeRows writes entries as "key\tn1\tn2...\n" rows (text, one
// allocation, no per-value DynamoDB type overhead: partials are rewritten
// on every Flush). Keys holding a tab, newline or leading quote are
// Go-quoted. row appends a row's numbers to nums (scratch, reused: a
// returned slice literal would allocate per row).
func encodeRows(n int, row func(i int, nums []int64) (string, []int64)) string {
	b := make([]byte, 0, n*40)
	var scratch [4]int64
	for i := range n {
		key, nums := row(i, scratch[:0])
		if strings.ContainsAny(key, "\t\n") || strings.HasPrefix(key, `"`) {
			b = strconv.AppendQuote(b, key)
		} else {
			b = append(b, key...)
		}
		for _, x := range nums {
			b = append(b, '\t')
			b = strconv.AppendInt(b, x, 10)
		}
		b = append(b, '\n')
	}
	return string(b)
}

func decodeRows(s string, width int, each func(key string, nums []int64)) error {
	nums := make([]int64, width)
	for i := 0; s != ""; i++ {
		line, rest, _ := strings.Cut(s, "\n")
		s = rest
		for j := width - 1; j >= 0; j-- {
			k := strings.LastIndexByte(line, '\t')
			if k < 0 {
				return fmt.Errorf("%w: row %d: want %d numbers", window.ErrBadItem, i, width)
			}
			x, err := strconv.ParseInt(line[k+1:], 10, 64)
			if err != nil {
				return fmt.Errorf("%w: row %d: %v", window.ErrBadItem, i, err)
			}
			nums[j] = x
			line = line[:k]
		}
		if strings.HasPrefix(line, `"`) {
			k, err := strconv.Unquote(line)
			if err != nil {
				return fmt.Errorf("%w: row %d key", window.ErrBadItem, i)
			}
			line = k
		}
		each(line, nums)
	}
	return nil
}

func encodeEntries(es []Entry) string {
	return encodeRows(len(es), func(i int, nums []int64) (string, []int64) {
		return es[i].Key, append(nums, es[i].Requests, es[i].Bytes)
	})
}

func parseEntries(s string) ([]Entry, error) {
	if s == "" {
		return nil, nil
	}
	out := make([]Entry, 0, strings.Count(s, "\n"))
	err := decodeRows(s, 2, func(k string, n []int64) { out = append(out, Entry{Key: k, Requests: n[0], Bytes: n[1]}) })
	return out, err
}

func encodeRanked(rs []Ranked) string {
	return encodeRows(len(rs), func(i int, nums []int64) (string, []int64) {
		r := &rs[i]
		return r.Key, append(nums, r.Requests, r.Bytes, r.ErrRequests, r.ErrBytes)
	})
}

func parseRanked(s string) ([]Ranked, error) {
	var out []Ranked
	err := decodeRows(s, 4, func(k string, n []int64) {
		out = append(out, Ranked{Entry: Entry{Key: k, Requests: n[0], Bytes: n[1]}, ErrRequests: n[2], ErrBytes: n[3]})
	})
	return out, err
}
