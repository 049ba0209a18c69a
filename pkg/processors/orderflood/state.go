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
	Customers   map[string]int64
	Countries   map[string]int64
	IPs         map[string]int64
	Invoices    map[string]struct{} // count: invoices
	// Overflow counts orders whose customer, country, IP or invoice was
	// not kept because the second already held max_keys of them.
	Overflow int64
}

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
	return len(s.Customers) + len(s.Countries) + len(s.IPs) + len(s.Invoices)
}

// Attributes of per-second partial items beyond window's common ones.
const (
	attrOrders    = "orders"      // N
	attrFirst     = "first_order" // S RFC 3339 nano
	attrLast      = "last_order"  // S RFC 3339 nano
	attrCustomers = "customers"   // M customer -> N
	attrCountries = "countries"   // M country -> N
	attrIPs       = "ips"         // M ip -> N
	attrInvoices  = "invoices"    // SS
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
		// A string set cannot be empty, hence the guard.
		m[attrInvoices] = &types.AttributeValueMemberSS{Value: slices.Sorted(maps.Keys(s.Invoices))}
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
	if ss, ok := item[attrInvoices].(*types.AttributeValueMemberSS); ok {
		s.Invoices = make(map[string]struct{}, len(ss.Value))
		for _, inv := range ss.Value {
			s.Invoices[inv] = struct{}{}
		}
	}
	return h, s, nil
}
