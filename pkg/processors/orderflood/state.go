package orderflood

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

// secState is what one shard counted in one event-time second. It is
// also the decoded form of a per-second partial item.
type secState struct {
	Orders      int64
	First, Last time.Time // event times of the first and last order
	// Millis counts the orders per millisecond of the second (count
	// lines, global mode): the sliding window is exact to the millisecond.
	Millis    map[int32]int64
	Customers map[string]int64
	Countries map[string]int64
	IPs       map[string]int64
	// Invoices holds, per invoice (count invoices), the first and last
	// millisecond of its lines in this second: a window that cuts the
	// second counts the invoice if one of its lines falls inside.
	Invoices map[string]span
	// Overflow counts orders whose customer, country, IP or invoice was
	// not kept because the second already held max_keys of them.
	Overflow int64
}

// span is the first and last millisecond of an invoice's lines within
// one second.
type span struct{ First, Last int32 }

func newSecState() *secState { return &secState{} }

// inc adds n to key k of *m, cloning k on insert. It reports false (and
// changes nothing) when k is new and the map is full.
func inc(m *map[string]int64, k string, n int64, maxKeys int) bool {
	if *m == nil {
		*m = map[string]int64{}
	}
	if _, ok := (*m)[k]; !ok {
		if len(*m) >= maxKeys || len(k) > maxKeyLen {
			return false
		}
		k = strings.Clone(k)
	}
	(*m)[k] += n
	return true
}

func (s *secState) seen(t time.Time) {
	if s.First.IsZero() || t.Before(s.First) {
		s.First = t
	}
	if t.After(s.Last) {
		s.Last = t
	}
}

// keyed returns the per-key counts of mode (nil for global).
func (s *secState) keyed(mode string) map[string]int64 {
	switch mode {
	case ModeCustomer:
		return s.Customers
	case ModeIP:
		return s.IPs
	}
	return nil
}

// count returns the orders of key in mode ("" and global: all orders).
func (s *secState) count(mode, key string) int64 {
	if mode == ModeGlobal {
		return s.Orders
	}
	return s.keyed(mode)[key]
}

// size is the number of keys held (bounded-state accounting).
func (s *secState) size() int {
	return len(s.Customers) + len(s.Countries) + len(s.IPs) + len(s.Invoices) + len(s.Millis)
}

// Attributes of per-second partial items beyond window's common ones.
const (
	attrOrders    = "orders"      // N
	attrFirst     = "first_order" // S RFC 3339 nano
	attrLast      = "last_order"  // S RFC 3339 nano
	attrCustomers = "customers"   // M customer -> N
	attrCountries = "countries"   // M country -> N
	attrIPs       = "ips"         // M ip -> N
	attrInvoices  = "invoices"    // M invoice -> S "first,last" (milliseconds)
	attrMillis    = "millis"      // S "ms:n,ms:n" (count lines, global mode)
	attrOverflow  = "overflow"    // N
)

// keys of the per-second partials: one partition per minute so a window's
// seconds from every shard come back in one or two Queries.
//
//	pk "orders#order-flood#2026-11-22T09:41"
//	sk "2026-11-22T09:41:07Z#shard#shardId-000000000001"
func bucketPK(name string, sec time.Time) string {
	return "orders#" + name + "#" + sec.UTC().Format("2006-01-02T15:04")
}

func secSK(sec time.Time, shardID string) string {
	return window.FormatTime(sec) + "#" + window.ShardSK(shardID)
}

// partialItem returns s as the partial of second sec on shard.
func partialItem(table, name, shardID string, sec time.Time, pos window.Position, final bool, expires time.Time, s *secState) processors.Item {
	pk, sk := bucketPK(name, sec), secSK(sec, shardID)
	m := window.Header{PK: pk, SK: sk, Kind: window.KindPartial, Shard: shardID, Start: sec, End: sec.Add(time.Second),
		Pos: pos, Final: final, ExpiresAt: expires}.Attrs(8)
	m[attrOrders] = window.Int(s.Orders)
	if !s.First.IsZero() {
		m[attrFirst] = window.Str(s.First.UTC().Format(time.RFC3339Nano))
		m[attrLast] = window.Str(s.Last.UTC().Format(time.RFC3339Nano))
	}
	putCounts(m, attrCustomers, s.Customers)
	putCounts(m, attrCountries, s.Countries)
	putCounts(m, attrIPs, s.IPs)
	if len(s.Invoices) > 0 {
		v := make(map[string]types.AttributeValue, len(s.Invoices))
		for inv, sp := range s.Invoices {
			v[inv] = window.Str(strconv.Itoa(int(sp.First)) + "," + strconv.Itoa(int(sp.Last)))
		}
		m[attrInvoices] = &types.AttributeValueMemberM{Value: v}
	}
	if len(s.Millis) > 0 {
		b := make([]byte, 0, 8*len(s.Millis))
		for i, ms := range slices.Sorted(maps.Keys(s.Millis)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(ms), 10)
			b = append(b, ':')
			b = strconv.AppendInt(b, s.Millis[ms], 10)
		}
		m[attrMillis] = window.Str(string(b))
	}
	if s.Overflow > 0 {
		m[attrOverflow] = window.Int(s.Overflow)
	}
	return processors.Item{Table: table, Key: pk + "|" + sk, Attrs: m}
}

func putCounts(m map[string]types.AttributeValue, name string, c map[string]int64) {
	if len(c) == 0 {
		return
	}
	v := make(map[string]types.AttributeValue, len(c))
	for k, n := range c {
		v[k] = window.Int(n)
	}
	m[name] = &types.AttributeValueMemberM{Value: v}
}

func getCounts(item map[string]types.AttributeValue, name string) (map[string]int64, error) {
	v, ok := item[name].(*types.AttributeValueMemberM)
	if !ok {
		return nil, nil
	}
	out := make(map[string]int64, len(v.Value))
	for k, a := range v.Value {
		n, ok := a.(*types.AttributeValueMemberN)
		if !ok {
			return nil, fmt.Errorf("%w: %s[%q] is not a number", window.ErrBadItem, name, k)
		}
		c, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: %s[%q]: %v", window.ErrBadItem, name, k, err)
		}
		out[k] = c
	}
	return out, nil
}

// parsePartial decodes a per-second partial item.
func parsePartial(item map[string]types.AttributeValue) (window.Header, *secState, error) {
	h, err := window.ParseHeader(item)
	if err != nil {
		return h, nil, err
	}
	s := &secState{}
	s.Orders, _ = window.GetInt(item, attrOrders)
	s.Overflow, _ = window.GetInt(item, attrOverflow)
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{attrFirst, &s.First}, {attrLast, &s.Last}} {
		if v, ok := window.GetStr(item, f.name); ok {
			if *f.dst, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return h, nil, fmt.Errorf("%w: %s: %v", window.ErrBadItem, f.name, err)
			}
		}
	}
	if s.Customers, err = getCounts(item, attrCustomers); err != nil {
		return h, nil, err
	}
	if s.Countries, err = getCounts(item, attrCountries); err != nil {
		return h, nil, err
	}
	if s.IPs, err = getCounts(item, attrIPs); err != nil {
		return h, nil, err
	}
	if s.Invoices, err = getSpans(item); err != nil {
		return h, nil, err
	}
	if s.Millis, err = getMillis(item); err != nil {
		return h, nil, err
	}
	return h, s, nil
}

func getSpans(item map[string]types.AttributeValue) (map[string]span, error) {
	v, ok := item[attrInvoices].(*types.AttributeValueMemberM)
	if !ok {
		return nil, nil
	}
	out := make(map[string]span, len(v.Value))
	for inv, a := range v.Value {
		str, _ := a.(*types.AttributeValueMemberS)
		if str == nil {
			return nil, fmt.Errorf("%w: %s[%q] is not a string", window.ErrBadItem, attrInvoices, inv)
		}
		f, l, _ := strings.Cut(str.Value, ",")
		first, err1 := strconv.Atoi(f)
		last, err2 := strconv.Atoi(l)
		if err1 != nil || err2 != nil || first < 0 || last < first || last > 999 {
			return nil, fmt.Errorf("%w: %s[%q] = %q", window.ErrBadItem, attrInvoices, inv, str.Value)
		}
		out[inv] = span{int32(first), int32(last)}
	}
	return out, nil
}

func getMillis(item map[string]types.AttributeValue) (map[int32]int64, error) {
	v, ok := window.GetStr(item, attrMillis)
	if !ok || v == "" {
		return nil, nil
	}
	out := map[int32]int64{}
	for part := range strings.SplitSeq(v, ",") {
		ms, n, _ := strings.Cut(part, ":")
		a, err1 := strconv.Atoi(ms)
		b, err2 := strconv.ParseInt(n, 10, 64)
		if err1 != nil || err2 != nil || a < 0 || a > 999 || b < 1 {
			return nil, fmt.Errorf("%w: %s entry %q", window.ErrBadItem, attrMillis, part)
		}
		out[int32(a)] += b
	}
	return out, nil
}
