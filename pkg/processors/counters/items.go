package counters

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

// Resolution is a bucket size of the counters table.
type Resolution struct {
	Name   string        // "minute" or "hour"
	Size   time.Duration // window length
	Layout string        // bucket format (UTC)
}

// The resolutions: bucket "2026-11-22T09:41" for a minute, "2026-11-22T09"
// for an hour (the contract's two), and "2026-11-22T09:41:07" for a second
// (optional, short-lived: config seconds).
var (
	Second = Resolution{Name: "second", Size: time.Second, Layout: "2006-01-02T15:04:05"}
	Minute = Resolution{Name: "minute", Size: time.Minute, Layout: "2006-01-02T15:04"}
	Hour   = Resolution{Name: "hour", Size: time.Hour, Layout: "2006-01-02T15"}
)

// Bucket returns the sort key of the bucket holding t.
func (r Resolution) Bucket(t time.Time) string { return t.UTC().Truncate(r.Size).Format(r.Layout) }

// Keys returns the APP-results keys of this resolution's partials
// ("counters#60s#<start>").
func (r Resolution) Keys() window.Keys { return window.NewKeys(resultName, r.Size) }

const resultName = "counters"

// Attribute names.
const (
	AttrEvent      = "event"  // counters table partition key
	AttrBucket     = "bucket" // counters table sort key
	AttrCount      = "count"
	AttrResolution = "resolution"
	attrCounts     = "counts" // partial: M of event -> N
	attrFinals     = "finals"
)

// Partial is one shard's counts for one bucket (an APP-results item).
type Partial struct {
	Shard      string
	Start, End time.Time
	Pos        window.Position
	Final      bool
	Counts     map[string]int64
}

// Totals are the fleet-wide counts of one bucket.
type Totals struct {
	Start, End time.Time
	// Merged shard partials, Finals of them final: the totals are complete
	// when they are equal and every shard with traffic is merged.
	Merged, Finals int
	Counts         map[string]int64
}

// Merge sums shard partials of one bucket. Partials of the same shard
// must not repeat (the last one wins).
func Merge(partials []Partial) Totals {
	var t Totals
	last := make(map[string]int, len(partials))
	for i, p := range partials {
		last[p.Shard] = i
	}
	t.Counts = map[string]int64{}
	for i, p := range partials {
		if last[p.Shard] != i {
			continue
		}
		if t.Merged == 0 || p.Start.Before(t.Start) {
			t.Start, t.End = p.Start, p.End
		}
		t.Merged++
		if p.Final {
			t.Finals++
		}
		for k, n := range p.Counts {
			t.Counts[k] += n
		}
	}
	return t
}

// PartialItem encodes p into the results table.
func PartialItem(table string, r Resolution, p *Partial, expires time.Time) processors.Item {
	keys := r.Keys()
	h := window.Header{
		PK: keys.Window(p.Start), SK: window.ShardSK(p.Shard), Kind: window.KindPartial, Shard: p.Shard,
		Start: p.Start, End: p.End, Pos: p.Pos, Final: p.Final, ExpiresAt: expires,
	}
	m := h.Attrs(1)
	cm := make(map[string]types.AttributeValue, len(p.Counts))
	for k, n := range p.Counts {
		cm[k] = window.Int(n)
	}
	m[attrCounts] = &types.AttributeValueMemberM{Value: cm}
	return processors.Item{Table: table, Key: h.PK + "|" + h.SK, Attrs: m}
}

// ParsePartial decodes a PartialItem.
func ParsePartial(item map[string]types.AttributeValue) (Partial, error) {
	h, err := window.ParseHeader(item)
	if err != nil {
		return Partial{}, err
	}
	p := Partial{Shard: h.Shard, Start: h.Start, End: h.End, Pos: h.Pos, Final: h.Final, Counts: map[string]int64{}}
	cm, ok := item[attrCounts].(*types.AttributeValueMemberM)
	if !ok {
		return p, fmt.Errorf("%w: %s %s: no %s", window.ErrBadItem, h.PK, h.SK, attrCounts)
	}
	for k, v := range cm.Value {
		n, ok := v.(*types.AttributeValueMemberN)
		if !ok {
			return p, fmt.Errorf("%w: %s %s: %s.%s", window.ErrBadItem, h.PK, h.SK, attrCounts, k)
		}
		x, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil {
			return p, fmt.Errorf("%w: %s %s: %s.%s: %v", window.ErrBadItem, h.PK, h.SK, attrCounts, k, err)
		}
		p.Counts[k] = x
	}
	return p, nil
}

// CounterItems returns one counters-table item per event of t (sorted by
// event): partition key event, sort key the bucket, the fleet-wide count.
// They are final when every merged partial was.
func CounterItems(table string, r Resolution, t *Totals, expires time.Time) []processors.Item {
	bucket := r.Bucket(t.Start)
	final := t.Merged > 0 && t.Finals == t.Merged
	out := make([]processors.Item, 0, len(t.Counts))
	for _, ev := range slices.Sorted(maps.Keys(t.Counts)) {
		out = append(out, processors.Item{Table: table, Key: ev + "|" + bucket, Attrs: map[string]types.AttributeValue{
			AttrEvent:              window.Str(ev),
			AttrBucket:             window.Str(bucket),
			AttrCount:              window.Int(t.Counts[ev]),
			AttrResolution:         window.Str(r.Name),
			window.AttrWindowStart: window.Str(window.FormatTime(t.Start)),
			window.AttrWindowEnd:   window.Str(window.FormatTime(t.End)),
			window.AttrMerged:      window.Int(int64(t.Merged)),
			attrFinals:             window.Int(int64(t.Finals)),
			window.AttrFinal:       window.Bool(final),
			window.AttrExpiresAt:   window.Int(expires.Unix()),
		}})
	}
	return out
}

// ParseCounter reads a counters-table item: event, bucket, count, final.
func ParseCounter(item map[string]types.AttributeValue) (event, bucket string, count int64, final bool, err error) {
	var ok1, ok2, ok3 bool
	event, ok1 = window.GetStr(item, AttrEvent)
	bucket, ok2 = window.GetStr(item, AttrBucket)
	count, ok3 = window.GetInt(item, AttrCount)
	final, _ = window.GetBool(item, window.AttrFinal)
	if !ok1 || !ok2 || !ok3 {
		return "", "", 0, false, fmt.Errorf("%w: counter item needs %s, %s and %s", window.ErrBadItem, AttrEvent, AttrBucket, AttrCount)
	}
	return event, bucket, count, final, nil
}

// HourRange returns the sort-key bounds to Query the hour buckets of the
// last hours hours up to now (inclusive): sk BETWEEN from AND to. The
// range also matches the minute (and second) buckets of the earlier hours
// (they sort between hours); keep items whose bucket has the hour layout's
// length, or use the resolution attribute. To read only the hour items,
// get them by key (their buckets are known).
func HourRange(now time.Time, hours int) (from, to string) {
	end := now.UTC().Truncate(time.Hour)
	return Hour.Bucket(end.Add(-time.Duration(max(hours-1, 0)) * time.Hour)), Hour.Bucket(end)
}

// MinuteRange returns the sort-key bounds of the minute buckets of the
// last minutes minutes up to now; the range may also match one or two
// hour buckets and the second buckets of earlier minutes (filter on the
// bucket length).
func MinuteRange(now time.Time, minutes int) (from, to string) {
	end := now.UTC().Truncate(time.Minute)
	return Minute.Bucket(end.Add(-time.Duration(max(minutes-1, 0)) * time.Minute)), Minute.Bucket(end)
}

// SecondRange returns the sort-key bounds of the second buckets of the
// last seconds seconds up to now; the range may also match minute and
// hour buckets (filter on the bucket length).
func SecondRange(now time.Time, seconds int) (from, to string) {
	end := now.UTC().Truncate(time.Second)
	return Second.Bucket(end.Add(-time.Duration(max(seconds-1, 0)) * time.Second)), Second.Bucket(end)
}

// ParseBucket returns the resolution and start time of a bucket sort key.
func ParseBucket(bucket string) (Resolution, time.Time, error) {
	for _, r := range []Resolution{Second, Minute, Hour} {
		if IsResolution(bucket, r) {
			t, err := time.Parse(r.Layout, bucket)
			if err != nil {
				return Resolution{}, time.Time{}, fmt.Errorf("%w: bucket %q: %v", window.ErrBadItem, bucket, err)
			}
			return r, t, nil
		}
	}
	return Resolution{}, time.Time{}, fmt.Errorf("%w: bucket %q: unknown layout", window.ErrBadItem, bucket)
}

// IsResolution reports whether bucket is formatted for r.
func IsResolution(bucket string, r Resolution) bool {
	return len(bucket) == len(r.Layout)
}
