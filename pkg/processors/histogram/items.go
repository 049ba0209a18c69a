package histogram

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

// Attribute names of histogram items (besides window's common ones).
const (
	attrEdges         = "edges"    // L of N: bucket upper bounds
	attrRequests      = "requests" // N: responses in the window
	attrBytes         = "bytes"    // N: their total size
	attrCounts        = "counts"   // L of N: responses per bucket (len(edges)+1)
	attrHosts         = "hosts"    // S: rows "host\tbytes\tcount0\tcount1...\n"
	attrHostCount     = "host_count"
	attrOtherRequests = "other_requests" // hosts beyond max_hosts
	attrOtherBytes    = "other_bytes"
	attrOtherCounts   = "other_counts"
	attrLargest       = "largest" // S: rows "bytes\thost\tpath\n", largest first
	attrFinals        = "finals"
	attrSkipped       = "skipped"
)

// Keys returns the item keys of the histogram processor called name (the
// name setting, default "histogram") with windows of size:
// "<name>#60s#<window start>".
func Keys(name string, size time.Duration) window.Keys { return window.NewKeys(name, size) }

// PartialItem encodes p as the item of its window and shard.
func PartialItem(table string, keys window.Keys, p *Partial, expires time.Time) processors.Item {
	h := window.Header{
		PK: keys.Window(p.Start), SK: window.ShardSK(p.Shard), Kind: window.KindPartial, Shard: p.Shard,
		Start: p.Start, End: p.End, Pos: p.Pos, Final: p.Final, ExpiresAt: expires,
	}
	m := h.Attrs(11)
	putHistogram(windowed.FieldsOf(m), p.Edges, p.Total, p.Hosts, p.Other, p.Largest)
	return processors.Item{Table: table, Key: h.PK + "|" + h.SK, Attrs: m}
}

// GlobalItem encodes g as the window's merged item (sort key "global"). It
// is final when every merged partial was.
func GlobalItem(table string, keys window.Keys, g *Global, pos window.Position, expires time.Time) processors.Item {
	h := window.Header{
		PK: keys.Window(g.Start), SK: window.GlobalSK, Kind: window.KindGlobal,
		Start: g.Start, End: g.End, Pos: pos, Final: g.Merged > 0 && g.Finals == g.Merged, ExpiresAt: expires,
	}
	m := h.Attrs(14)
	putHistogram(windowed.FieldsOf(m), g.Edges, g.Total, g.Hosts, g.Other, g.Largest)
	m[window.AttrMerged] = window.Int(int64(g.Merged))
	m[attrFinals] = window.Int(int64(g.Finals))
	m[attrSkipped] = window.Int(int64(g.Skipped))
	return processors.Item{Table: table, Key: h.PK + "|" + h.SK, Attrs: m}
}

func putHistogram(f *windowed.Fields, edges []int64, total Row, hosts []HostRow, other Row, largest []Large) {
	f.SetInts(attrEdges, edges)
	f.SetInt(attrRequests, total.Requests())
	f.SetInt(attrBytes, total.Bytes)
	f.SetInts(attrCounts, total.Counts)
	f.SetStr(attrHosts, encodeHosts(hosts))
	f.SetInt(attrHostCount, int64(len(hosts)))
	f.SetInt(attrOtherRequests, other.Requests())
	f.SetInt(attrOtherBytes, other.Bytes)
	f.SetInts(attrOtherCounts, other.Counts)
	f.SetStr(attrLargest, encodeLargest(largest))
}

// ParsePartial decodes a PartialItem.
func ParsePartial(item map[string]types.AttributeValue) (Partial, error) {
	h, err := window.ParseHeader(item)
	if err != nil {
		return Partial{}, err
	}
	p := Partial{Shard: h.Shard, Start: h.Start, End: h.End, Pos: h.Pos, Final: h.Final}
	if err := parseHistogram(windowed.FieldsOf(item), &p.Edges, &p.Total, &p.Hosts, &p.Other, &p.Largest); err != nil {
		return p, fmt.Errorf("%s %s: %w", h.PK, h.SK, err)
	}
	return p, nil
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
	skipped, _ := window.GetInt(item, attrSkipped)
	g.Merged, g.Finals, g.Skipped = int(merged), int(finals), int(skipped)
	if err := parseHistogram(windowed.FieldsOf(item), &g.Edges, &g.Total, &g.Hosts, &g.Other, &g.Largest); err != nil {
		return g, fmt.Errorf("%s %s: %w", h.PK, h.SK, err)
	}
	return g, nil
}

func parseHistogram(f *windowed.Fields, edges *[]int64, total *Row, hosts *[]HostRow, other *Row, largest *[]Large) error {
	var err error
	if *edges, err = f.Ints(attrEdges); err != nil {
		return err
	}
	nb := len(*edges) + 1
	if total.Counts, err = f.Ints(attrCounts); err != nil || len(total.Counts) != nb {
		return fmt.Errorf("%w: %s: want %d buckets", window.ErrBadItem, attrCounts, nb)
	}
	if other.Counts, err = f.Ints(attrOtherCounts); err != nil || len(other.Counts) != nb {
		return fmt.Errorf("%w: %s: want %d buckets", window.ErrBadItem, attrOtherCounts, nb)
	}
	if total.Bytes, err = f.Int(attrBytes); err != nil {
		return err
	}
	if other.Bytes, err = f.Int(attrOtherBytes); err != nil {
		return err
	}
	s, err := f.Str(attrHosts)
	if err == nil {
		*hosts, err = decodeHosts(s, nb)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", attrHosts, err)
	}
	if s, err = f.Str(attrLargest); err == nil {
		*largest, err = decodeLargest(s)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", attrLargest, err)
	}
	return nil
}

// Rows are text rows (see window.AppendField).

func encodeHosts(hs []HostRow) string {
	row := 16
	if len(hs) > 0 {
		row += 8 * (len(hs[0].Counts) + 1)
	}
	b := make([]byte, 0, len(hs)*row)
	for _, h := range hs {
		b = window.AppendField(b, h.Host)
		b = append(b, '\t')
		b = strconv.AppendInt(b, h.Bytes, 10)
		for _, c := range h.Counts {
			b = append(b, '\t')
			b = strconv.AppendInt(b, c, 10)
		}
		b = append(b, '\n')
	}
	return string(b)
}

func decodeHosts(s string, nb int) ([]HostRow, error) {
	out := make([]HostRow, 0, strings.Count(s, "\n"))
	for i := 0; s != ""; i++ {
		line, rest, _ := strings.Cut(s, "\n")
		s = rest
		f := strings.Split(line, "\t")
		if len(f) != nb+2 {
			return nil, fmt.Errorf("%w: row %d: %d fields, want %d", window.ErrBadItem, i, len(f), nb+2)
		}
		host, err := window.ParseField(f[0])
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", i, err)
		}
		nums := make([]int64, nb+1)
		for j, x := range f[1:] {
			if nums[j], err = strconv.ParseInt(x, 10, 64); err != nil {
				return nil, fmt.Errorf("%w: row %d: %v", window.ErrBadItem, i, err)
			}
		}
		out = append(out, HostRow{Host: host, Row: Row{Bytes: nums[0], Counts: nums[1:]}})
	}
	return out, nil
}

func encodeLargest(ls []Large) string {
	b := make([]byte, 0, len(ls)*64)
	for _, l := range ls {
		b = strconv.AppendInt(b, l.Bytes, 10)
		b = append(b, '\t')
		b = window.AppendField(b, l.Host)
		b = append(b, '\t')
		b = window.AppendField(b, l.Path)
		b = append(b, '\n')
	}
	return string(b)
}

func decodeLargest(s string) ([]Large, error) {
	var out []Large
	for i := 0; s != ""; i++ {
		line, rest, _ := strings.Cut(s, "\n")
		s = rest
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			return nil, fmt.Errorf("%w: row %d: %d fields, want 3", window.ErrBadItem, i, len(f))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: row %d: %v", window.ErrBadItem, i, err)
		}
		l := Large{Bytes: n}
		if l.Host, err = window.ParseField(f[1]); err != nil {
			return nil, fmt.Errorf("row %d: %w", i, err)
		}
		if l.Path, err = window.ParseField(f[2]); err != nil {
			return nil, fmt.Errorf("row %d: %w", i, err)
		}
		out = append(out, l)
	}
	return out, nil
}
