package dynamo

import (
	"bytes"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// attrsEqual reports whether two items hold the same attributes and values.
// It is used to recognise an item DynamoDB handed back (as unprocessed, or
// as the existing item of a failed condition) among the ones we sent.
func attrsEqual(a, b map[string]types.AttributeValue) bool {
	if len(a) != len(b) {
		return false
	}
	for k, av := range a {
		bv, ok := b[k]
		if !ok || !valueEqual(av, bv) {
			return false
		}
	}
	return true
}

func valueEqual(a, b types.AttributeValue) bool {
	switch av := a.(type) {
	case *types.AttributeValueMemberS:
		bv, ok := b.(*types.AttributeValueMemberS)
		return ok && av.Value == bv.Value
	case *types.AttributeValueMemberN:
		bv, ok := b.(*types.AttributeValueMemberN)
		return ok && av.Value == bv.Value
	case *types.AttributeValueMemberB:
		bv, ok := b.(*types.AttributeValueMemberB)
		return ok && bytes.Equal(av.Value, bv.Value)
	case *types.AttributeValueMemberBOOL:
		bv, ok := b.(*types.AttributeValueMemberBOOL)
		return ok && av.Value == bv.Value
	case *types.AttributeValueMemberNULL:
		bv, ok := b.(*types.AttributeValueMemberNULL)
		return ok && av.Value == bv.Value
	case *types.AttributeValueMemberSS:
		bv, ok := b.(*types.AttributeValueMemberSS)
		return ok && sameSet(av.Value, bv.Value)
	case *types.AttributeValueMemberNS:
		bv, ok := b.(*types.AttributeValueMemberNS)
		return ok && sameSet(av.Value, bv.Value)
	case *types.AttributeValueMemberBS:
		bv, ok := b.(*types.AttributeValueMemberBS)
		if !ok || len(av.Value) != len(bv.Value) {
			return false
		}
		// Sets come back in any order.
		for _, x := range av.Value {
			if !slices.ContainsFunc(bv.Value, func(y []byte) bool { return bytes.Equal(x, y) }) {
				return false
			}
		}
		return true
	case *types.AttributeValueMemberL:
		bv, ok := b.(*types.AttributeValueMemberL)
		return ok && slices.EqualFunc(av.Value, bv.Value, valueEqual)
	case *types.AttributeValueMemberM:
		bv, ok := b.(*types.AttributeValueMemberM)
		return ok && attrsEqual(av.Value, bv.Value)
	default:
		return false
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
