package dynamo

import (
	"context"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/results"
)

type nopBatch struct{}

func (nopBatch) BatchWriteItem(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	return &dynamodb.BatchWriteItemOutput{}, nil
}

// BenchmarkWriteItems measures the writer's own cost (de-duplication,
// chunking, request building, fan-out) for 1,000 items over 800 keys,
// against a client that returns at once.
func BenchmarkWriteItems(b *testing.B) {
	for _, inFlight := range []int{1, 4} {
		b.Run("inflight="+strconv.Itoa(inFlight), func(b *testing.B) {
			w, err := NewItemWriter(nopBatch{}, WriterOptions{MaxInFlight: inFlight})
			if err != nil {
				b.Fatal(err)
			}
			items := make([]results.Item, 1000)
			for i := range items {
				k := "2026-11-22T09:41#shardId-" + strconv.Itoa(i%800)
				items[i] = results.Item{Table: "app-results", Key: k, Attrs: map[string]types.AttributeValue{
					"pk": &types.AttributeValueMemberS{Value: k},
					"n":  &types.AttributeValueMemberN{Value: strconv.Itoa(i)},
				}}
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := w.WriteItems(b.Context(), items); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(items)), "ns/item")
		})
	}
}
