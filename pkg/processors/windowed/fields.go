package windowed

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

// ErrBadField is returned by the Fields getters for a missing or mistyped
// field (it wraps window.ErrBadItem).
var ErrBadField = fmt.Errorf("%w: field", window.ErrBadItem)

// Fields are the plugin's own attributes of one item (a partial, the
// global result or a row). The runner adds the window header (keys,
// window bounds, position, final flag, expiry); a plugin only names its
// values. Names the runner writes (pk, sk, kind, shard, window_start,
// window_end, pos, final, expires_at, merged, finals) are reserved.
type Fields struct {
	m   map[string]types.AttributeValue
	err error // a packed item that does not unpack: every getter returns it
}

func newFields(m map[string]types.AttributeValue) *Fields { return &Fields{m: m} }

// SetInt sets a number.
func (f *Fields) SetInt(name string, v int64) { f.m[name] = window.Int(v) }

// SetStr sets a string.
func (f *Fields) SetStr(name, v string) { f.m[name] = window.Str(v) }

// SetBool sets a boolean.
func (f *Fields) SetBool(name string, v bool) { f.m[name] = window.Bool(v) }

// SetBytes sets a binary value (the slice is not copied).
func (f *Fields) SetBytes(name string, v []byte) { f.m[name] = &types.AttributeValueMemberB{Value: v} }

// SetInts sets a list of numbers.
func (f *Fields) SetInts(name string, v []int64) {
	l := make([]types.AttributeValue, len(v))
	for i, x := range v {
		l[i] = window.Int(x)
	}
	f.m[name] = &types.AttributeValueMemberL{Value: l}
}

// SetCounts sets a map of names to numbers.
func (f *Fields) SetCounts(name string, v map[string]int64) {
	m := make(map[string]types.AttributeValue, len(v))
	for k, x := range v {
		m[k] = window.Int(x)
	}
	f.m[name] = &types.AttributeValueMemberM{Value: m}
}

// Has reports whether name is set.
func (f *Fields) Has(name string) bool { _, ok := f.m[name]; return ok }

// Int returns a number; a missing field is 0.
func (f *Fields) Int(name string) (int64, error) {
	if f.err != nil {
		return 0, f.err
	}
	v, ok := f.m[name]
	if !ok {
		return 0, nil
	}
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("%w %s: not a number", ErrBadField, name)
	}
	x, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w %s: %v", ErrBadField, name, err)
	}
	return x, nil
}

// Str returns a string; a missing field is "".
func (f *Fields) Str(name string) (string, error) {
	if f.err != nil {
		return "", f.err
	}
	v, ok := f.m[name]
	if !ok {
		return "", nil
	}
	s, ok := v.(*types.AttributeValueMemberS)
	if !ok {
		return "", fmt.Errorf("%w %s: not a string", ErrBadField, name)
	}
	return s.Value, nil
}

// Bytes returns a binary value; a missing field is nil.
func (f *Fields) Bytes(name string) ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	v, ok := f.m[name]
	if !ok {
		return nil, nil
	}
	b, ok := v.(*types.AttributeValueMemberB)
	if !ok {
		return nil, fmt.Errorf("%w %s: not binary", ErrBadField, name)
	}
	return b.Value, nil
}

// Ints returns a list of numbers; a missing field is an error.
func (f *Fields) Ints(name string) ([]int64, error) {
	if f.err != nil {
		return nil, f.err
	}
	l, ok := f.m[name].(*types.AttributeValueMemberL)
	if !ok {
		return nil, fmt.Errorf("%w %s: missing number list", ErrBadField, name)
	}
	out := make([]int64, len(l.Value))
	for i, e := range l.Value {
		n, ok := e.(*types.AttributeValueMemberN)
		if !ok {
			return nil, fmt.Errorf("%w %s: entry %d is not a number", ErrBadField, name, i)
		}
		x, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w %s: entry %d: %v", ErrBadField, name, i, err)
		}
		out[i] = x
	}
	return out, nil
}

// Counts returns a map of names to numbers; a missing field is an error.
func (f *Fields) Counts(name string) (map[string]int64, error) {
	if f.err != nil {
		return nil, f.err
	}
	m, ok := f.m[name].(*types.AttributeValueMemberM)
	if !ok {
		return nil, fmt.Errorf("%w %s: missing", ErrBadField, name)
	}
	out := make(map[string]int64, len(m.Value))
	for k, v := range m.Value {
		n, ok := v.(*types.AttributeValueMemberN)
		if !ok {
			return nil, fmt.Errorf("%w %s.%s: not a number", ErrBadField, name, k)
		}
		x, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w %s.%s: %v", ErrBadField, name, k, err)
		}
		out[k] = x
	}
	return out, nil
}

// equalAttrs reports whether two items hold the same values.
func equalAttrs(a, b map[string]types.AttributeValue) bool {
	return maps.EqualFunc(a, b, equalValue)
}

func equalValue(a, b types.AttributeValue) bool {
	switch a := a.(type) {
	case *types.AttributeValueMemberS:
		b, ok := b.(*types.AttributeValueMemberS)
		return ok && a.Value == b.Value
	case *types.AttributeValueMemberN:
		b, ok := b.(*types.AttributeValueMemberN)
		return ok && a.Value == b.Value
	case *types.AttributeValueMemberBOOL:
		b, ok := b.(*types.AttributeValueMemberBOOL)
		return ok && a.Value == b.Value
	case *types.AttributeValueMemberB:
		b, ok := b.(*types.AttributeValueMemberB)
		return ok && slices.Equal(a.Value, b.Value)
	case *types.AttributeValueMemberL:
		b, ok := b.(*types.AttributeValueMemberL)
		return ok && slices.EqualFunc(a.Value, b.Value, equalValue)
	case *types.AttributeValueMemberM:
		b, ok := b.(*types.AttributeValueMemberM)
		return ok && maps.EqualFunc(a.Value, b.Value, equalValue)
	}
	return false
}

// ErrIncompatible is returned (wrapped) by Aggregate.Decode for a partial
// written under settings that cannot be merged with the current ones (say,
// other histogram buckets). On restore the runner closes such a window
// as the previous owner left it; the global merge skips the partial.
var ErrIncompatible = errors.New("partial incompatible with the current settings")

// FieldsOf wraps a stored item for a result reader (`consumer query`, the
// dashboard) that decodes it with a plugin's own decoder, or an item
// being built (the setters write into it). A packed partial (see pack.go)
// reads as if it were not.
func FieldsOf(item map[string]types.AttributeValue) *Fields {
	m, err := unpack(item)
	return &Fields{m: m, err: err}
}
