package processortest

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// Clock is a fake processors.Clock that only moves when told to.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock reading t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t (backwards too).
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Recorder is a processors.Emitter that keeps everything emitted.
type Recorder struct {
	Items    []processors.Item
	Messages []processors.Message
	Data     []processors.Datum
}

// Put implements processors.Emitter.
func (r *Recorder) Put(it processors.Item) { r.Items = append(r.Items, it) }

// Publish implements processors.Emitter.
func (r *Recorder) Publish(m processors.Message) { r.Messages = append(r.Messages, m) }

// Metric implements processors.Emitter.
func (r *Recorder) Metric(d processors.Datum) { r.Data = append(r.Data, d) }

// Len returns the number of emissions of all kinds.
func (r *Recorder) Len() int { return len(r.Items) + len(r.Messages) + len(r.Data) }

// Reset forgets everything recorded.
func (r *Recorder) Reset() {
	r.Items, r.Messages, r.Data = r.Items[:0], r.Messages[:0], r.Data[:0]
}

// Publisher is a fake processors.Publisher (the Env's synchronous one)
// that keeps every message it accepted. It is safe for concurrent use.
type Publisher struct {
	mu    sync.Mutex
	taken int
	// Messages is every message accepted, in order.
	Messages []processors.Message
	// Fail, when set, is returned instead of accepting.
	Fail error
	// After, when set, runs after each accepted message: a test cancels
	// the processor's context there to kill it between publishing and
	// confirming.
	After func(processors.Message)
}

// Publish implements processors.Publisher.
func (p *Publisher) Publish(ctx context.Context, msgs []processors.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	if p.Fail != nil {
		p.mu.Unlock()
		return p.Fail
	}
	p.Messages = append(p.Messages, msgs...)
	after := p.After
	p.mu.Unlock()
	if after != nil {
		for _, m := range msgs {
			after(m)
		}
	}
	return nil
}

// Take returns the messages accepted since the previous Take.
func (p *Publisher) Take() []processors.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := slices.Clone(p.Messages[p.taken:])
	p.taken = len(p.Messages)
	return out
}

// Store is an in-memory processors.Store with DynamoDB's key semantics
// (items are unique per partition+sort key; Query returns sort key order).
// It is safe for concurrent use.
type Store struct {
	mu     sync.Mutex
	keys   map[string][2]string
	tables map[string]map[string]map[string]map[string]types.AttributeValue // table -> pk -> sk -> item
	// Fail, when set, is returned by every call (to test error paths).
	Fail error
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{keys: map[string][2]string{}, tables: map[string]map[string]map[string]map[string]types.AttributeValue{}}
}

// SetKeys declares the key attribute names of table. Undeclared tables use
// the contract's names by suffix: "-counters" event/bucket, "-alarms"
// alarm/period, anything else pk/sk.
func (s *Store) SetKeys(table, pk, sk string) {
	s.mu.Lock()
	s.keys[table] = [2]string{pk, sk}
	s.mu.Unlock()
}

func (s *Store) keyNames(table string) (string, string) {
	if k, ok := s.keys[table]; ok {
		return k[0], k[1]
	}
	switch {
	case strings.HasSuffix(table, "-counters"):
		return "event", "bucket"
	case strings.HasSuffix(table, "-alarms"):
		return "alarm", "period"
	}
	return "pk", "sk"
}

func str(item map[string]types.AttributeValue, name string) (string, bool) {
	v, ok := item[name].(*types.AttributeValueMemberS)
	if !ok {
		return "", false
	}
	return v.Value, true
}

func (s *Store) itemKey(table string, item map[string]types.AttributeValue) (pk, sk string, err error) {
	pkName, skName := s.keyNames(table)
	pk, ok1 := str(item, pkName)
	sk, ok2 := str(item, skName)
	if !ok1 || !ok2 || pk == "" || sk == "" {
		return "", "", fmt.Errorf("table %s: item lacks string key attributes %s/%s", table, pkName, skName)
	}
	return pk, sk, nil
}

// Query implements processors.Store.
func (s *Store) Query(ctx context.Context, table, pkName, pk, skName, from, to string) ([]map[string]types.AttributeValue, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Fail != nil {
		return nil, s.Fail
	}
	var out []map[string]types.AttributeValue
	if tpk, tsk := s.keyNames(table); tpk == pkName && tsk == skName {
		for sk, it := range s.tables[table][pk] {
			if sk >= from && sk <= to {
				out = append(out, maps.Clone(it))
			}
		}
	} else { // not the table's keys: scan, as a Query on an index would
		for _, part := range s.tables[table] {
			for _, it := range part {
				p, _ := str(it, pkName)
				k, _ := str(it, skName)
				if p == pk && k >= from && k <= to {
					out = append(out, maps.Clone(it))
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b map[string]types.AttributeValue) int {
		x, _ := str(a, skName)
		y, _ := str(b, skName)
		return cmp.Compare(x, y)
	})
	return out, nil
}

// PutIfAbsent implements processors.Store.
func (s *Store) PutIfAbsent(ctx context.Context, table, keyAttr string, item map[string]types.AttributeValue) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Fail != nil {
		return false, s.Fail
	}
	pk, sk, err := s.itemKey(table, item)
	if err != nil {
		return false, err
	}
	if _, exists := s.tables[table][pk][sk]; exists {
		return false, nil
	}
	s.put(table, pk, sk, item)
	return true, nil
}

// PutIf implements processors.Store.
func (s *Store) PutIf(ctx context.Context, table, keyAttr string, item, cond map[string]types.AttributeValue) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Fail != nil {
		return false, s.Fail
	}
	pk, sk, err := s.itemKey(table, item)
	if err != nil {
		return false, err
	}
	old, exists := s.tables[table][pk][sk]
	if !exists {
		return false, nil
	}
	for name, want := range cond {
		if got, ok := old[name]; !ok || Printable(got) != Printable(want) {
			return false, nil
		}
	}
	s.put(table, pk, sk, item)
	return true, nil
}

func (s *Store) put(table, pk, sk string, item map[string]types.AttributeValue) {
	t := s.tables[table]
	if t == nil {
		t = map[string]map[string]map[string]types.AttributeValue{}
		s.tables[table] = t
	}
	part := t[pk]
	if part == nil {
		part = map[string]map[string]types.AttributeValue{}
		t[pk] = part
	}
	part[sk] = maps.Clone(item)
}

// Apply writes items as whole-item overwrites, in order, the way the
// pipeline's item writer does.
func (s *Store) Apply(items []processors.Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range items {
		pk, sk, err := s.itemKey(it.Table, it.Attrs)
		if err != nil {
			return err
		}
		s.put(it.Table, pk, sk, it.Attrs)
	}
	return nil
}

// Items returns the items of table ordered by partition then sort key.
func (s *Store) Items(table string) []map[string]types.AttributeValue {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]types.AttributeValue
	t := s.tables[table]
	for _, pk := range slices.Sorted(maps.Keys(t)) {
		for _, sk := range slices.Sorted(maps.Keys(t[pk])) {
			out = append(out, maps.Clone(t[pk][sk]))
		}
	}
	return out
}

// Tables returns the names of the tables holding items, sorted.
func (s *Store) Tables() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.tables))
}

// Dump returns every item as table -> "pk|sk" -> attribute name -> a
// printable value, convenient for cmp.Diff. Attributes named in drop are
// left out.
func (s *Store) Dump(drop ...string) map[string]map[string]map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[string]map[string]string{}
	for table, parts := range s.tables {
		t := map[string]map[string]string{}
		for pk, items := range parts {
			for sk, it := range items {
				m := make(map[string]string, len(it))
				for name, v := range it {
					if !slices.Contains(drop, name) {
						m[name] = Printable(v)
					}
				}
				t[pk+"|"+sk] = m
			}
		}
		out[table] = t
	}
	return out
}

// Printable renders an attribute value deterministically.
func Printable(v types.AttributeValue) string {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return "S:" + v.Value
	case *types.AttributeValueMemberN:
		return "N:" + v.Value
	case *types.AttributeValueMemberBOOL:
		return fmt.Sprintf("BOOL:%t", v.Value)
	case *types.AttributeValueMemberNULL:
		return "NULL"
	case *types.AttributeValueMemberB:
		return fmt.Sprintf("B:%x", v.Value)
	case *types.AttributeValueMemberSS:
		return "SS:" + strings.Join(slices.Sorted(slices.Values(v.Value)), ",")
	case *types.AttributeValueMemberNS:
		return "NS:" + strings.Join(slices.Sorted(slices.Values(v.Value)), ",")
	case *types.AttributeValueMemberL:
		parts := make([]string, len(v.Value))
		for i, e := range v.Value {
			parts[i] = Printable(e)
		}
		return "L:[" + strings.Join(parts, " ") + "]"
	case *types.AttributeValueMemberM:
		keys := slices.Sorted(maps.Keys(v.Value))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + Printable(v.Value[k])
		}
		return "M:{" + strings.Join(parts, " ") + "}"
	case nil:
		return "<nil>"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// Sequence fills the Meta of recs in place as if they were read from one
// shard in order: ShardID, strictly increasing 56-digit sequence numbers,
// SubSequence 0 and, when unset, ArrivalTime = the record's Time. It
// returns recs.
func Sequence(shardID string, recs []records.Record) []records.Record {
	for i := range recs {
		m := &recs[i].Meta
		m.ShardID = shardID
		m.SequenceNumber = SeqNum(i)
		m.SubSequence = 0
		if m.ArrivalTime.IsZero() {
			m.ArrivalTime = recs[i].Time
		}
	}
	return recs
}

// SeqNum returns the i-th sequence number Sequence assigns.
func SeqNum(i int) string { return fmt.Sprintf("4959%052d", i+1) }
