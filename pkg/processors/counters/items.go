package counters

import (
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

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
)

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
