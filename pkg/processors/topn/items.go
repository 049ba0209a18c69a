package topn

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
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
	m[attrRequests] = window.Int(p.Requests)
	m[attrBytes] = window.Int(p.Bytes)
	m[attrKeys] = window.Int(p.Keys)
	m[attrOverflowReq] = window.Int(p.OverflowRequests)
	m[attrOverflowBytes] = window.Int(p.OverflowBytes)
	m[attrIPs] = entriesAttr(p.IPs)
	m[attrBoundReq] = window.Int(p.BoundRequests)
	m[attrBoundBytes] = window.Int(p.BoundBytes)
	m[attrErrReq] = window.Int(p.ErrRequests)
	m[attrErrBytes] = window.Int(p.ErrBytes)
	m[attrHosts] = entriesAttr(p.Hosts)
	m[attrHostBoundReq] = window.Int(p.HostBoundRequests)
	m[attrHostBoundB] = window.Int(p.HostBoundBytes)
	m[attrHostErrReq] = window.Int(p.HostErrRequests)
	m[attrHostErrBytes] = window.Int(p.HostErrBytes)
	return processors.Item{Table: table, Key: h.PK + "|" + h.SK, Attrs: m}
}

// ParsePartial decodes a PartialItem.
func ParsePartial(item map[string]types.AttributeValue) (Partial, error) {
	h, err := window.ParseHeader(item)
	if err != nil {
		return Partial{}, err
	}
	p := Partial{Shard: h.Shard, Start: h.Start, End: h.End, Pos: h.Pos, Final: h.Final}
	ints := []struct {
		name string
		dst  *int64
	}{
		{attrRequests, &p.Requests}, {attrBytes, &p.Bytes}, {attrKeys, &p.Keys},
		{attrOverflowReq, &p.OverflowRequests}, {attrOverflowBytes, &p.OverflowBytes},
		{attrBoundReq, &p.BoundRequests}, {attrBoundBytes, &p.BoundBytes},
		{attrErrReq, &p.ErrRequests}, {attrErrBytes, &p.ErrBytes},
		{attrHostBoundReq, &p.HostBoundRequests}, {attrHostBoundB, &p.HostBoundBytes},
		{attrHostErrReq, &p.HostErrRequests}, {attrHostErrBytes, &p.HostErrBytes},
	}
	for _, f := range ints {
		*f.dst, _ = window.GetInt(item, f.name)
	}
	if p.IPs, err = parseEntries(item[attrIPs]); err != nil {
		return p, fmt.Errorf("%s %s: %s: %w", h.PK, h.SK, attrIPs, err)
	}
	if p.Hosts, err = parseEntries(item[attrHosts]); err != nil {
		return p, fmt.Errorf("%s %s: %s: %w", h.PK, h.SK, attrHosts, err)
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
	m[attrN] = window.Int(int64(n))
	m[window.AttrMerged] = window.Int(int64(g.Merged))
	m[attrFinals] = window.Int(int64(g.Finals))
	m[attrRequests] = window.Int(g.Requests)
	m[attrBytes] = window.Int(g.Bytes)
	m[attrKeys] = window.Int(g.Keys)
	m[attrOverflowReq] = window.Int(g.OverflowRequests)
	m[attrOverflowBytes] = window.Int(g.OverflowBytes)
	m[attrBoundReq] = window.Int(g.BoundRequests)
	m[attrBoundBytes] = window.Int(g.BoundBytes)
	m[attrTopRequests] = rankedAttr(g.TopRequests)
	m[attrTopBytes] = rankedAttr(g.TopBytes)
	m[attrHosts] = rankedAttr(g.Hosts)
	return processors.Item{Table: table, Key: h.PK + "|" + h.SK, Attrs: m}
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
		if *dst, err = parseRanked(item[name]); err != nil {
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

func entriesAttr(es []Entry) types.AttributeValue {
	return window.Str(encodeRows(len(es), func(i int, nums []int64) (string, []int64) {
		return es[i].Key, append(nums, es[i].Requests, es[i].Bytes)
	}))
}

func parseEntries(v types.AttributeValue) ([]Entry, error) {
	s, _ := v.(*types.AttributeValueMemberS)
	if s == nil {
		return nil, nil
	}
	out := make([]Entry, 0, strings.Count(s.Value, "\n"))
	err := decodeRows(s.Value, 2, func(k string, n []int64) { out = append(out, Entry{Key: k, Requests: n[0], Bytes: n[1]}) })
	return out, err
}

func rankedAttr(rs []Ranked) types.AttributeValue {
	return window.Str(encodeRows(len(rs), func(i int, nums []int64) (string, []int64) {
		r := &rs[i]
		return r.Key, append(nums, r.Requests, r.Bytes, r.ErrRequests, r.ErrBytes)
	}))
}

func parseRanked(v types.AttributeValue) ([]Ranked, error) {
	s, _ := v.(*types.AttributeValueMemberS)
	if s == nil {
		return nil, nil
	}
	var out []Ranked
	err := decodeRows(s.Value, 4, func(k string, n []int64) {
		out = append(out, Ranked{Entry: Entry{Key: k, Requests: n[0], Bytes: n[1]}, ErrRequests: n[2], ErrBytes: n[3]})
	})
	return out, err
}
