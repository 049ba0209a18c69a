package bench_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/records"
)

// resultOf names an item's result: its first key attribute up to '#'.
func resultOf(m map[string]types.AttributeValue) string {
	for _, k := range []string{"pk", "event", "alarm", "customer_id"} {
		if v, ok := m[k].(*types.AttributeValueMemberS); ok {
			name, _, _ := strings.Cut(v.Value, "#")
			if k != "pk" {
				return k
			}
			return name
		}
	}
	return "?"
}

// TestChainWriteUnits (SHARDWATCH_COST=1) runs the full chain over the
// Zaker log re-timed to 1,000 records/s at the default flush_interval and
// at a flush per batch, and prints the write units per shard-second of
// every result: which processor's items cost what. Units are estimated
// from item sizes (1 per started KB), reads are not counted.
func TestChainWriteUnits(t *testing.T) {
	if os.Getenv("SHARDWATCH_COST") == "" {
		t.Skip("SHARDWATCH_COST=1 to run")
	}
	var log [][]byte
	for range 12 { // two minutes: windows open, close and merge
		log = append(log, lines(t, zakerFile)...)
	}
	payloads := retime(t, log, fullRate)
	for _, flush := range []time.Duration{0, defaultFlush} {
		c := newChain(t, records.FormatAuto)
		c.cfg.FlushInterval = flush
		raws, times := rawShard(t, records.FormatAuto, payloads)
		c.open(t)
		c.ddb.units = map[string]float64{}
		for lo := 0; lo < len(raws); lo += batchSize {
			hi := min(lo+batchSize, len(raws))
			c.clock.Set(times[hi-1])
			if err := c.pipe.Process(context.Background(), raws[lo:hi]); err != nil {
				t.Fatal(err)
			}
		}
		secs := times[len(times)-1].Sub(times[0]).Seconds()
		c.close(t)
		keys := make([]string, 0, len(c.ddb.units))
		total := 0.0
		for k, v := range c.ddb.units {
			keys = append(keys, k)
			total += v
		}
		slices.Sort(keys)
		var b strings.Builder
		fmt.Fprintf(&b, "flush_interval %s, %.0f s of records: %.2f write units per shard-second\n", flush, secs, total/secs)
		for _, k := range keys {
			fmt.Fprintf(&b, "  %-40s %6.2f\n", k, math.Round(c.ddb.units[k]/secs*100)/100)
		}
		t.Log(b.String())
	}
}
