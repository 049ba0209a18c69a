package windowed

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

// Packed partials. DynamoDB bills a write unit per started KB of an item,
// and a partial is rewritten on every flush while its window is open;
// typed attributes spell every name and number out. So the runner writes
// a partial's plugin fields as one deflated binary attribute when that
// takes fewer write units. Only the runner reads partials (restore and
// global merges), so the encoding is its own; a partial written unpacked,
// by this version or an older one, still reads. Global items, which
// dashboards and queries read, are never packed.
const attrPacked = "fields" + window.Zipped

// pack replaces the plugin fields of attrs (every attribute not in
// header) with attrPacked when the item then takes fewer write units.
func pack(attrs map[string]types.AttributeValue, header map[string]bool) {
	plain := window.ItemSize(attrs)
	fields := make(map[string]types.AttributeValue, len(attrs)-len(header))
	binary := 0 // already compact (deflated lists): packing does not shrink it
	for k, v := range attrs {
		if !header[k] {
			fields[k] = v
			if b, ok := v.(*types.AttributeValueMemberB); ok {
				binary += len(b.Value)
			}
		}
	}
	if units := (plain + 1023) / 1024; units == 1 || binary >= (units-1)*1024 {
		return // no unit to save: spare the deflate (it runs on every flush)
	}
	z := window.Deflate(string(appendValue(nil, &types.AttributeValueMemberM{Value: fields})))
	packed := plain - window.ItemSize(fields) + len(attrPacked) + len(z)
	if (packed+1023)/1024 >= (plain+1023)/1024 {
		return
	}
	for k := range fields {
		delete(attrs, k)
	}
	attrs[attrPacked] = &types.AttributeValueMemberB{Value: z}
}

// unpack returns attrs with a packed partial's fields restored (attrs
// itself when it is not packed).
func unpack(attrs map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
	b, ok := attrs[attrPacked].(*types.AttributeValueMemberB)
	if !ok {
		return attrs, nil
	}
	s, err := window.Inflate(b.Value)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", window.ErrBadItem, attrPacked, err)
	}
	v, rest, err := readValue([]byte(s), 0)
	m, isMap := v.(*types.AttributeValueMemberM)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %s: %v", window.ErrBadItem, attrPacked, err)
	case !isMap || len(rest) != 0:
		return nil, fmt.Errorf("%w: %s: not one map", window.ErrBadItem, attrPacked)
	}
	out := make(map[string]types.AttributeValue, len(attrs)+len(m.Value))
	for k, v := range attrs {
		if k != attrPacked {
			out[k] = v
		}
	}
	maps.Copy(out, m.Value)
	return out, nil
}

// Value encoding: a tag byte, then for S, N, B a uvarint length and the
// bytes; BOOL and NULL nothing more (tags t, f, 0); L a uvarint count and
// the values; M a uvarint count and, in key order, a length-prefixed key
// and its value; SS, NS, BS a count and length-prefixed members.
const (
	tagS, tagN, tagB          = 's', 'n', 'b'
	tagTrue, tagFalse, tagNil = 't', 'f', '0'
	tagL, tagM                = 'l', 'm'
	tagSS, tagNS, tagBS       = 'S', 'N', 'B'
	maxDepth                  = 32 // DynamoDB nests at most 32 levels
)

var errPacked = errors.New("malformed packed value")

func appendBytes(dst []byte, b []byte) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(b))), b...)
}

func appendStrs(dst []byte, tag byte, ss []string) []byte {
	dst = binary.AppendUvarint(append(dst, tag), uint64(len(ss)))
	for _, s := range ss {
		dst = appendBytes(dst, []byte(s))
	}
	return dst
}

func appendValue(dst []byte, v types.AttributeValue) []byte {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return appendBytes(append(dst, tagS), []byte(v.Value))
	case *types.AttributeValueMemberN:
		return appendBytes(append(dst, tagN), []byte(v.Value))
	case *types.AttributeValueMemberB:
		return appendBytes(append(dst, tagB), v.Value)
	case *types.AttributeValueMemberBOOL:
		if v.Value {
			return append(dst, tagTrue)
		}
		return append(dst, tagFalse)
	case *types.AttributeValueMemberL:
		dst = binary.AppendUvarint(append(dst, tagL), uint64(len(v.Value)))
		for _, e := range v.Value {
			dst = appendValue(dst, e)
		}
		return dst
	case *types.AttributeValueMemberM:
		dst = binary.AppendUvarint(append(dst, tagM), uint64(len(v.Value)))
		for _, k := range slices.Sorted(maps.Keys(v.Value)) {
			dst = appendValue(appendBytes(dst, []byte(k)), v.Value[k])
		}
		return dst
	case *types.AttributeValueMemberSS:
		return appendStrs(dst, tagSS, v.Value)
	case *types.AttributeValueMemberNS:
		return appendStrs(dst, tagNS, v.Value)
	case *types.AttributeValueMemberBS:
		dst = binary.AppendUvarint(append(dst, tagBS), uint64(len(v.Value)))
		for _, b := range v.Value {
			dst = appendBytes(dst, b)
		}
		return dst
	}
	return append(dst, tagNil)
}

func readBytes(b []byte) ([]byte, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, errPacked
	}
	return b[k : k+int(n)], b[k+int(n):], nil
}

func readCount(b []byte) (int, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) { // every member takes a byte at least
		return 0, nil, errPacked
	}
	return int(n), b[k:], nil
}

func readValue(b []byte, depth int) (types.AttributeValue, []byte, error) {
	if len(b) == 0 || depth > maxDepth {
		return nil, nil, errPacked
	}
	tag, b := b[0], b[1:]
	switch tag {
	case tagS, tagN, tagB:
		v, rest, err := readBytes(b)
		if err != nil {
			return nil, nil, err
		}
		switch tag {
		case tagS:
			return &types.AttributeValueMemberS{Value: string(v)}, rest, nil
		case tagN:
			return &types.AttributeValueMemberN{Value: string(v)}, rest, nil
		}
		return &types.AttributeValueMemberB{Value: slices.Clone(v)}, rest, nil
	case tagTrue, tagFalse:
		return &types.AttributeValueMemberBOOL{Value: tag == tagTrue}, b, nil
	case tagNil:
		return &types.AttributeValueMemberNULL{Value: true}, b, nil
	case tagL:
		n, b, err := readCount(b)
		if err != nil {
			return nil, nil, err
		}
		l := make([]types.AttributeValue, n)
		for i := range l {
			if l[i], b, err = readValue(b, depth+1); err != nil {
				return nil, nil, err
			}
		}
		return &types.AttributeValueMemberL{Value: l}, b, nil
	case tagM:
		n, b, err := readCount(b)
		if err != nil {
			return nil, nil, err
		}
		m := make(map[string]types.AttributeValue, n)
		for range n {
			var k []byte
			if k, b, err = readBytes(b); err != nil {
				return nil, nil, err
			}
			var v types.AttributeValue
			if v, b, err = readValue(b, depth+1); err != nil {
				return nil, nil, err
			}
			m[string(k)] = v
		}
		return &types.AttributeValueMemberM{Value: m}, b, nil
	case tagSS, tagNS, tagBS:
		n, b, err := readCount(b)
		if err != nil {
			return nil, nil, err
		}
		var bs [][]byte
		for range n {
			var v []byte
			if v, b, err = readBytes(b); err != nil {
				return nil, nil, err
			}
			bs = append(bs, v)
		}
		switch tag {
		case tagBS:
			for i := range bs {
				bs[i] = slices.Clone(bs[i])
			}
			return &types.AttributeValueMemberBS{Value: bs}, b, nil
		case tagSS:
			return &types.AttributeValueMemberSS{Value: strs(bs)}, b, nil
		}
		return &types.AttributeValueMemberNS{Value: strs(bs)}, b, nil
	}
	return nil, nil, errPacked
}

func strs(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}
