package dashboard

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

// WindowInfo says which window a panel shows and how old it is, so a
// panel never goes blank while a closed window exists: it shows the newest
// one with its time, or says why there is none.
type WindowInfo struct {
	// Found: a global item exists; the other fields describe it.
	Found bool `json:"found"`
	// Configured: the processor has written at least one cursor (it runs,
	// or ran, on some worker). False means "configure the processor".
	Configured bool `json:"configured"`
	// Processor is the processor (config key) the panel reads.
	Processor   string     `json:"processor"`
	WindowStart *time.Time `json:"window_start"`
	WindowEnd   *time.Time `json:"window_end"`
	// Final: every merged shard partial was final.
	Final bool `json:"final"`
	// Now is the time the age is measured from (the clock, or the data
	// time base's now); AgeSeconds = Now - WindowEnd (0 when negative).
	Now        time.Time `json:"now"`
	AgeSeconds int64     `json:"age_seconds"`
}

// maxCursorScan bounds the cursor items read per result kind (one per
// shard that ever ran the processor).
const maxCursorScan = 200

// cursorBack is how many windows before a cursor's closed horizon are
// tried: windows without records have no item.
const cursorBack = 30

// newestGlobal finds the newest global item of keys (windows of size) up
// to now: it reads the shards' cursors (their closed horizon and recent
// windows) and tries those windows and the last Lookback windows before
// now, with one bounded BatchGetItem. It returns nil when there is none;
// info.Configured says whether any cursor exists.
func (r *Reader) newestGlobal(ctx context.Context, keys window.Keys, size time.Duration, now time.Time, processor string) (map[string]types.AttributeValue, WindowInfo, error) {
	info := WindowInfo{Processor: processor, Now: now.UTC()}
	out, err := r.db.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(r.cfg.Tables.Results),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": window.AttrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": window.Str(keys.Cursor())},
		Limit:                     aws.Int32(maxCursorScan),
	})
	if err != nil {
		return nil, info, fmt.Errorf("cursors %s in %s: %w", keys.Cursor(), r.cfg.Tables.Results, err)
	}
	info.Configured = len(out.Items) > 0
	seen := map[time.Time]bool{}
	var starts []time.Time
	add := func(t time.Time) {
		t = t.UTC().Truncate(size)
		// Windows starting after now are skipped on the wall clock; the data
		// time base follows one event's newest bucket, and other results
		// (CloudFront lines with current times) may lie after it.
		if seen[t] || len(starts) >= maxBatchGet || (r.cfg.Time == WallClock && t.After(now)) {
			return
		}
		seen[t] = true
		starts = append(starts, t)
	}
	nowStart := now.UTC().Truncate(size)
	for i := range r.cfg.Lookback {
		add(nowStart.Add(-time.Duration(i) * size))
	}
	var horizons []time.Time
	for _, it := range out.Items {
		c, err := window.ParseCursor(it)
		if err != nil {
			continue // a damaged cursor only narrows the search
		}
		for _, w := range c.Windows {
			add(w)
		}
		if !c.ClosedUpTo.IsZero() {
			horizons = append(horizons, c.ClosedUpTo)
		}
	}
	for k := 1; k <= cursorBack; k++ {
		for _, h := range horizons {
			add(h.Add(-time.Duration(k) * size))
		}
	}
	keyList := make([]map[string]types.AttributeValue, len(starts))
	for i, s := range starts {
		keyList[i] = map[string]types.AttributeValue{window.AttrPK: window.Str(keys.Window(s)), window.AttrSK: window.Str(window.GlobalSK)}
	}
	items, err := r.batchGet(ctx, r.cfg.Tables.Results, keyList)
	if err != nil {
		return nil, info, err
	}
	it := newest(items)
	if it == nil {
		return nil, info, nil
	}
	h, err := window.ParseHeader(it)
	if err != nil {
		return nil, info, fmt.Errorf("%s: %w", r.cfg.Tables.Results, err)
	}
	info.Found, info.Configured = true, true
	info.WindowStart, info.WindowEnd, info.Final = &h.Start, &h.End, h.Final
	if age := now.Sub(h.End); age > 0 {
		info.AgeSeconds = int64(age / time.Second)
	}
	return it, info, nil
}
