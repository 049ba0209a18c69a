package window

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/processors"
)

// Attribute names shared by every windowed result item, so `consumer
// query` and the conformance kit can read any processor's items.
const (
	AttrPK          = "pk"
	AttrSK          = "sk"
	AttrKind        = "kind"               // "partial", "global" or "cursor"
	AttrShard       = processors.AttrShard // shard id (partials, cursors)
	AttrWindowStart = "window_start"       // RFC 3339 UTC
	AttrWindowEnd   = "window_end"         // RFC 3339 UTC
	AttrPos         = "pos"                // Position.String of the newest record covered
	AttrFinal       = "final"              // BOOL: the window is closed, totals are complete
	AttrExpiresAt   = "expires_at"         // N: epoch seconds (DynamoDB TTL)
	AttrMerged      = "merged"             // N: shard partials merged into a global item
	AttrWatermark   = "watermark"          // cursor: RFC 3339 nano
	AttrClosedUpTo  = "closed_up_to"       // cursor: RFC 3339
	AttrWindows     = "windows"            // cursor: L of S window starts
)

// Item kinds (AttrKind values).
const (
	KindPartial = "partial"
	KindGlobal  = "global"
	KindCursor  = "cursor"
)

// GlobalSK is the sort key of a window's merged, fleet-wide item.
const GlobalSK = "global"

// ShardSK is the sort key of a shard's partial or cursor item.
func ShardSK(shardID string) string { return "shard#" + shardID }

// Keys builds the partition keys of one result kind at one window size:
// "<result>#<size>s#<window start>" for a window, "<result>#<size>s#cursor"
// for the cursors. E.g. "topn#60s#2026-11-22T09:41:00Z".
type Keys struct{ prefix string }

// NewKeys returns the keys of result (e.g. "topn") with windows of size.
func NewKeys(result string, size time.Duration) Keys {
	return Keys{prefix: result + "#" + strconv.FormatInt(int64(size/time.Second), 10) + "s#"}
}

// Window returns the partition key of the window starting at start.
func (k Keys) Window(start time.Time) string { return k.prefix + FormatTime(start) }

// Prefix returns what every key of k starts with ("topn#60s#").
func (k Keys) Prefix() string { return k.prefix }

// Cursor returns the partition key of the per-shard cursor items.
func (k Keys) Cursor() string { return k.prefix + "cursor" }

// FormatTime formats t as RFC 3339 in UTC (second precision).
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Header is the common part of a windowed partial or global item.
type Header struct {
	PK, SK     string
	Kind       string
	Shard      string // "" for global items
	Start, End time.Time
	Pos        Position
	Final      bool
	ExpiresAt  time.Time
}

// Attrs returns h as attributes in a new map with room for extra more.
func (h Header) Attrs(extra int) map[string]types.AttributeValue {
	m := make(map[string]types.AttributeValue, 9+extra)
	m[AttrPK] = Str(h.PK)
	m[AttrSK] = Str(h.SK)
	m[AttrKind] = Str(h.Kind)
	if h.Shard != "" {
		m[AttrShard] = Str(h.Shard)
	}
	m[AttrWindowStart] = Str(FormatTime(h.Start))
	m[AttrWindowEnd] = Str(FormatTime(h.End))
	if !h.Pos.IsZero() {
		m[AttrPos] = Str(h.Pos.String())
	}
	m[AttrFinal] = Bool(h.Final)
	m[AttrExpiresAt] = Int(h.ExpiresAt.Unix())
	return m
}

// ErrBadItem is returned when a stored item lacks an expected attribute.
var ErrBadItem = errors.New("malformed item")

// ParseHeader reads the common attributes of a partial or global item.
func ParseHeader(item map[string]types.AttributeValue) (Header, error) {
	var h Header
	var err error
	h.PK, _ = GetStr(item, AttrPK)
	h.SK, _ = GetStr(item, AttrSK)
	h.Kind, _ = GetStr(item, AttrKind)
	h.Shard, _ = GetStr(item, AttrShard)
	if h.Start, err = GetTime(item, AttrWindowStart); err != nil {
		return h, err
	}
	if h.End, err = GetTime(item, AttrWindowEnd); err != nil {
		return h, err
	}
	if s, ok := GetStr(item, AttrPos); ok {
		if h.Pos, err = ParsePosition(s); err != nil {
			return h, fmt.Errorf("%s %s: %w", h.PK, h.SK, err)
		}
	}
	h.Final, _ = GetBool(item, AttrFinal)
	if n, ok := GetInt(item, AttrExpiresAt); ok {
		h.ExpiresAt = time.Unix(n, 0).UTC()
	}
	return h, nil
}

// Cursor is a shard's windowing progress for one result kind, written
// next to its partials so a new owner knows which partials to restore.
type Cursor struct {
	Watermark  time.Time
	ClosedUpTo time.Time
	Position   Position
	// Windows are the starts of the windows whose partials to load.
	Windows []time.Time
}

// CursorKey is what a new owner decides from a cursor: which partials to
// load, the closed horizon, and the lateness horizon (the start of the
// window the watermark minus grace falls in: a record is late exactly when
// its window starts before it). The watermark and position themselves only
// move Replayed/Late counts, never a result, so a writer skips a cursor
// whose key equals the last one written: one write unit less per flush.
type CursorKey struct {
	windows    string
	closedUpTo time.Time
	late       time.Time
}

// Key returns c's CursorKey for windows of cfg.
func (c Cursor) Key(cfg Config) CursorKey {
	var b strings.Builder
	for _, w := range c.Windows {
		b.WriteString(FormatTime(w))
	}
	return CursorKey{windows: b.String(), closedUpTo: c.ClosedUpTo, late: cfg.Start(c.Watermark.Add(-cfg.Grace))}
}

// CursorItem returns c as the item to emit into table.
func CursorItem(table string, k Keys, shardID string, c Cursor, expires time.Time) processors.Item {
	ws := make([]types.AttributeValue, len(c.Windows))
	for i, w := range c.Windows {
		ws[i] = Str(FormatTime(w))
	}
	pk, sk := k.Cursor(), ShardSK(shardID)
	m := map[string]types.AttributeValue{
		AttrPK:         Str(pk),
		AttrSK:         Str(sk),
		AttrKind:       Str(KindCursor),
		AttrShard:      Str(shardID),
		AttrWatermark:  Str(c.Watermark.UTC().Format(time.RFC3339Nano)),
		AttrClosedUpTo: Str(FormatTime(c.ClosedUpTo)),
		AttrWindows:    &types.AttributeValueMemberL{Value: ws},
		AttrExpiresAt:  Int(expires.Unix()),
	}
	if !c.Position.IsZero() {
		m[AttrPos] = Str(c.Position.String())
	}
	return processors.Item{Table: table, Key: pk + "|" + sk, Attrs: m}
}

// ParseCursor decodes a CursorItem.
func ParseCursor(item map[string]types.AttributeValue) (Cursor, error) {
	var c Cursor
	var err error
	s, _ := GetStr(item, AttrWatermark)
	if c.Watermark, err = time.Parse(time.RFC3339Nano, s); err != nil {
		return c, fmt.Errorf("%w: cursor %s: %v", ErrBadItem, AttrWatermark, err)
	}
	if c.ClosedUpTo, err = GetTime(item, AttrClosedUpTo); err != nil {
		return c, err
	}
	if s, ok := GetStr(item, AttrPos); ok {
		if c.Position, err = ParsePosition(s); err != nil {
			return c, err
		}
	}
	if l, ok := item[AttrWindows].(*types.AttributeValueMemberL); ok {
		for _, v := range l.Value {
			s, ok := v.(*types.AttributeValueMemberS)
			if !ok {
				return c, fmt.Errorf("%w: cursor %s entry", ErrBadItem, AttrWindows)
			}
			t, err := time.Parse(time.RFC3339, s.Value)
			if err != nil {
				return c, fmt.Errorf("%w: cursor %s: %v", ErrBadItem, AttrWindows, err)
			}
			c.Windows = append(c.Windows, t.UTC())
		}
	}
	return c, nil
}

// Querier is the part of processors.Store that Load uses.
type Querier interface {
	Query(ctx context.Context, table, pkName, pk, skName, from, to string) ([]map[string]types.AttributeValue, error)
}

// Load reads shard's cursor for keys from table and the partial items of
// the windows it lists. found is false when the shard has no cursor (a
// fresh start). Partials that no longer exist are simply absent.
func Load(ctx context.Context, q Querier, table string, k Keys, shardID string) (c Cursor, partials []map[string]types.AttributeValue, found bool, err error) {
	sk := ShardSK(shardID)
	items, err := q.Query(ctx, table, AttrPK, k.Cursor(), AttrSK, sk, sk)
	if err != nil {
		return c, nil, false, fmt.Errorf("load cursor %s: %w", k.Cursor(), err)
	}
	if len(items) == 0 {
		return c, nil, false, nil
	}
	if c, err = ParseCursor(items[0]); err != nil {
		return c, nil, false, fmt.Errorf("load cursor %s: %w", k.Cursor(), err)
	}
	for _, start := range c.Windows {
		pk := k.Window(start)
		got, err := q.Query(ctx, table, AttrPK, pk, AttrSK, sk, sk)
		if err != nil {
			return c, nil, false, fmt.Errorf("load partial %s: %w", pk, err)
		}
		partials = append(partials, got...)
	}
	return c, partials, true, nil
}

// Attribute constructors and readers, to keep item code short.

// Str returns a string attribute.
func Str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

// Int returns a number attribute.
func Int(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// Float returns a number attribute.
func Float(f float64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatFloat(f, 'g', -1, 64)}
}

// Bool returns a boolean attribute.
func Bool(b bool) types.AttributeValue { return &types.AttributeValueMemberBOOL{Value: b} }

// GetStr returns the string attribute name.
func GetStr(item map[string]types.AttributeValue, name string) (string, bool) {
	v, ok := item[name].(*types.AttributeValueMemberS)
	if !ok {
		return "", false
	}
	return v.Value, true
}

// GetInt returns the integer number attribute name.
func GetInt(item map[string]types.AttributeValue, name string) (int64, bool) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	return n, err == nil
}

// GetFloat returns the number attribute name.
func GetFloat(item map[string]types.AttributeValue, name string) (float64, bool) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(v.Value, 64)
	return f, err == nil
}

// GetBool returns the boolean attribute name.
func GetBool(item map[string]types.AttributeValue, name string) (bool, bool) {
	v, ok := item[name].(*types.AttributeValueMemberBOOL)
	if !ok {
		return false, false
	}
	return v.Value, true
}

// GetTime returns the RFC 3339 string attribute name.
func GetTime(item map[string]types.AttributeValue, name string) (time.Time, error) {
	s, ok := GetStr(item, name)
	if !ok {
		return time.Time{}, fmt.Errorf("%w: missing %s", ErrBadItem, name)
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s: %v", ErrBadItem, name, err)
	}
	return t.UTC(), nil
}
