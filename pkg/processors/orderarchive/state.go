package orderarchive

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

// run counts the identical lines of the invoice a shard is in. Lines of
// one invoice arrive together, so the count restarts with every new
// invoice: that bounds the state, and the same order produced again later
// numbers its lines from 1 again instead of continuing.
type run struct {
	pk, invoice string           // the current invoice: customer key and "<date>#<invoice>"
	last        time.Time        // arrival time of its newest line
	counts      map[string]int32 // line key prefix -> occurrences so far
}

// next counts one more occurrence of line k, arrived at arrival, and
// returns its number, from 1. A line of another invoice, or of the same
// invoice more than gap after the previous line, starts a new count.
// Beyond max distinct lines in one invoice, new lines are not counted (all
// number 1).
func (r *run) next(k LineKey, arrival time.Time, gap time.Duration, max int) int {
	late := gap > 0 && !r.last.IsZero() && arrival.Sub(r.last) > gap
	if inv := k.invoice(); late || k.PK != r.pk || inv != r.invoice {
		r.pk, r.invoice = strings.Clone(k.PK), inv
		if r.counts == nil {
			r.counts = make(map[string]int32, 64)
		}
		clear(r.counts)
	}
	if arrival.After(r.last) {
		r.last = arrival
	}
	n, ok := r.counts[k.Prefix]
	if !ok && len(r.counts) >= max {
		return 1
	}
	r.counts[k.Prefix] = n + 1
	return int(n + 1)
}

func (r run) clone() run {
	return run{pk: r.pk, invoice: r.invoice, last: r.last, counts: maps.Clone(r.counts)}
}

// gen is the run at a flush, with the newest position it covers.
type gen struct {
	pos window.Position
	run run
}

// stateKey locates a shard's state item in the results table:
// pk "orderarchive#<archive table>#state" (one per archive), sk
// "shard#<shard id>".
type stateKey struct{ pk, sk string }

func newStateKey(table, shardID string) stateKey {
	return stateKey{pk: Name + "#" + table + "#state", sk: window.ShardSK(shardID)}
}

// Attributes of the state item, per generation i (0 newest, 1 previous):
// gen<i>_pos, gen<i>_pk and gen<i>_invoice (the invoice), gen<i>_last
// (arrival of its newest line, RFC 3339 nano), gen<i>_lines (rows
// "<stock code>#<hash>#\tcount\n": the line key prefix after the invoice).
const stateGens = 2

func stateItem(table string, k stateKey, shardID string, gens []gen, expires time.Time) processors.Item {
	m := map[string]types.AttributeValue{
		AttrPK:               str(k.pk),
		AttrSK:               str(k.sk),
		window.AttrKind:      str("state"),
		window.AttrShard:     str(shardID),
		window.AttrExpiresAt: window.Int(expires.Unix()),
		"gens":               window.Int(int64(len(gens))),
	}
	for i, g := range gens {
		p := "gen" + strconv.Itoa(i) + "_"
		m[p+"pos"] = str(g.pos.String())
		m[p+"pk"] = str(g.run.pk)
		m[p+"invoice"] = str(g.run.invoice)
		if !g.run.last.IsZero() {
			m[p+"last"] = str(g.run.last.UTC().Format(time.RFC3339Nano))
		}
		var b strings.Builder
		for _, prefix := range slices.Sorted(maps.Keys(g.run.counts)) {
			// Every prefix starts with the invoice: store the rest.
			b.WriteString(strings.TrimPrefix(prefix, g.run.invoice+"#"))
			b.WriteByte('\t')
			b.WriteString(strconv.Itoa(int(g.run.counts[prefix])))
			b.WriteByte('\n')
		}
		m[p+"lines"] = str(b.String())
	}
	return processors.Item{Table: table, Key: k.pk + "|" + k.sk, Attrs: m}
}

// parseState decodes a state item's generations, newest first. It returns
// the generations it could read along with any error.
func parseState(item map[string]types.AttributeValue) ([]gen, error) {
	var gens []gen
	for i := range stateGens {
		p := "gen" + strconv.Itoa(i) + "_"
		ps, ok := getStr(item, p+"pos")
		if !ok {
			break
		}
		pos, err := window.ParsePosition(ps)
		if err != nil {
			return gens, fmt.Errorf("%s: %w", p+"pos", err)
		}
		g := gen{pos: pos, run: run{counts: map[string]int32{}}}
		g.run.pk, _ = getStr(item, p+"pk")
		g.run.invoice, _ = getStr(item, p+"invoice")
		if s, ok := getStr(item, p+"last"); ok {
			if g.run.last, err = time.Parse(time.RFC3339Nano, s); err != nil {
				return gens, fmt.Errorf("%w: %s %q", ErrBadItem, p+"last", s)
			}
		}
		lines, _ := getStr(item, p+"lines")
		for row := range strings.SplitSeq(strings.TrimSuffix(lines, "\n"), "\n") {
			if row == "" {
				continue
			}
			prefix, n, ok := strings.Cut(row, "\t")
			c, err := strconv.Atoi(n)
			if !ok || err != nil || c < 1 {
				return gens, fmt.Errorf("%w: %s row %q", ErrBadItem, p+"lines", row)
			}
			g.run.counts[g.run.invoice+"#"+prefix] = int32(c)
		}
		gens = append(gens, g)
	}
	return gens, nil
}
