package dynamo

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/pkg/results"
)

func TestDeadLetterItem(t *testing.T) {
	expires := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name   string
		dl     results.DeadLetter
		max    int
		checks map[string]types.AttributeValue
	}{
		{
			name: "key layout",
			dl:   results.DeadLetter{ShardID: "shardId-000000000003", Sequence: "4959", SubSequence: 12, Data: []byte("x")},
			max:  10,
			checks: map[string]types.AttributeValue{
				"pk":             &types.AttributeValueMemberS{Value: "shardId-000000000003"},
				"sk":             &types.AttributeValueMemberS{Value: "4959#00000000000000000012"},
				"data_truncated": &types.AttributeValueMemberBOOL{Value: false},
				"expires_at":     &types.AttributeValueMemberN{Value: "1800000000"},
			},
		},
		{
			name: "no shard, oversized data",
			dl:   results.DeadLetter{Sequence: "1", Data: []byte("0123456789abc")},
			max:  10,
			checks: map[string]types.AttributeValue{
				"pk":             &types.AttributeValueMemberS{Value: "unknown"},
				"data":           &types.AttributeValueMemberB{Value: []byte("0123456789")},
				"data_size":      &types.AttributeValueMemberN{Value: "13"},
				"data_truncated": &types.AttributeValueMemberBOOL{Value: true},
			},
		},
		{
			name: "long reason cut on a rune boundary",
			dl:   results.DeadLetter{ShardID: "s", Sequence: "1", Reason: "a" + strings.Repeat("é", 3000)},
			max:  10,
			checks: map[string]types.AttributeValue{
				"reason": &types.AttributeValueMemberS{Value: "a" + strings.Repeat("é", 2047)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			item := DeadLetterItem(&tt.dl, expires, tt.max)
			got := map[string]types.AttributeValue{}
			for k := range tt.checks {
				got[k] = item[k]
			}
			if d := cmp.Diff(tt.checks, got, cmp.Exporter(func(reflect.Type) bool { return true })); d != "" {
				t.Errorf("item (-want +got):\n%s", d)
			}
			back, _, err := DecodeDeadLetter(item)
			if err != nil || back.Sequence != tt.dl.Sequence || back.SubSequence != tt.dl.SubSequence {
				t.Errorf("decode back: %+v, %v", back, err)
			}
		})
	}
}
