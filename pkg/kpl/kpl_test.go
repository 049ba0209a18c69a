package kpl_test

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/awslabs/kinesis-aggregation/go/v2/deaggregator"
	rec "github.com/awslabs/kinesis-aggregation/go/v2/records"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"

	"github.com/shardwatch/shardwatch/internal/testenv"
	"github.com/shardwatch/shardwatch/pkg/kpl"
)

type vectorFile struct {
	Vectors []struct {
		Chunk      int `json:"chunk"`
		Aggregated []struct {
			PartitionKey    string  `json:"partitionKey"`
			ExplicitHashKey *string `json:"explicitHashKey"`
			DataB64         string  `json:"data_b64"`
		} `json:"aggregated_records"`
		Expected []struct {
			PartitionKey    string  `json:"partitionKey"`
			ExplicitHashKey *string `json:"explicitHashKey"`
			Data            string  `json:"data"`
		} `json:"expected_user_records"`
	} `json:"vectors"`
}

// userRec is a comparable view of a user record.
type userRec struct {
	PK, EHK, Data string
}

// TestVectorsDeaggregate checks the aws-kinesis-agg (npm) vectors against
// the deaggregator the consumer engine uses and against ours.
func TestVectorsDeaggregate(t *testing.T) {
	raw, err := os.ReadFile(testenv.SharedData(t, "kpl/aws-kinesis-agg_apache_logs_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vf vectorFile
	if err := json.Unmarshal(raw, &vf); err != nil {
		t.Fatal(err)
	}
	var aggregates, users int
	for _, v := range vf.Vectors {
		var want, wantNoEHK, gotEngine, gotOurs []userRec
		for _, e := range v.Expected {
			u := userRec{PK: e.PartitionKey, Data: e.Data}
			wantNoEHK = append(wantNoEHK, u)
			if e.ExplicitHashKey != nil {
				u.EHK = *e.ExplicitHashKey
			}
			want = append(want, u)
		}
		for _, a := range v.Aggregated {
			aggregates++
			data, err := base64.StdEncoding.DecodeString(a.DataB64)
			if err != nil {
				t.Fatalf("chunk %d: %v", v.Chunk, err)
			}
			if !kpl.IsAggregated(data) {
				t.Fatalf("chunk %d: IsAggregated = false", v.Chunk)
			}
			engine, err := deaggregator.DeaggregateRecords([]types.Record{{
				Data: data, PartitionKey: aws.String(a.PartitionKey), SequenceNumber: aws.String("1"),
			}})
			if err != nil {
				t.Fatalf("chunk %d: awslabs deaggregator: %v", v.Chunk, err)
			}
			for _, r := range engine {
				gotEngine = append(gotEngine, userRec{PK: aws.ToString(r.PartitionKey), Data: string(r.Data)})
			}
			ours, err := kpl.Deaggregate(kpl.UserRecord{PartitionKey: a.PartitionKey, Data: data})
			if err != nil {
				t.Fatalf("chunk %d: Deaggregate: %v", v.Chunk, err)
			}
			for _, r := range ours {
				gotOurs = append(gotOurs, userRec{PK: r.PartitionKey, EHK: r.ExplicitHashKey, Data: string(r.Data)})
			}
		}
		users += len(gotEngine)
		if diff := cmp.Diff(wantNoEHK, gotEngine); diff != "" {
			t.Errorf("chunk %d: awslabs deaggregator (-want +got):\n%s", v.Chunk, diff)
		}
		if diff := cmp.Diff(want, gotOurs); diff != "" {
			t.Errorf("chunk %d: kpl.Deaggregate (-want +got):\n%s", v.Chunk, diff)
		}
	}
	if aggregates != 12 || users != 600 {
		t.Errorf("got %d aggregates with %d user records, want 12 and 600", aggregates, users)
	}
}

// TestAggregateRoundTrip packs records under several limits and expands
// every aggregate with the engine's deaggregator.
func TestAggregateRoundTrip(t *testing.T) {
	var in []kpl.UserRecord
	for i := range 2000 {
		pk := fmt.Sprintf("10.0.%d.%d", i%7, i%13)
		data := []byte(strings.Repeat(fmt.Sprintf("line-%d;", i), 1+i%40))
		if i%97 == 0 {
			data = nil // empty payloads survive
		}
		in = append(in, kpl.UserRecord{PartitionKey: pk, Data: data})
	}
	tests := []struct {
		name   string
		limits kpl.Limits
	}{
		{"defaults", kpl.Limits{}},
		{"small bytes", kpl.Limits{MaxBytes: 4096}},
		{"few records", kpl.Limits{MaxRecords: 7}},
		{"one record", kpl.Limits{MaxRecords: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agg, err := kpl.NewAggregate(tt.limits)
			if err != nil {
				t.Fatal(err)
			}
			maxBytes := tt.limits.MaxBytes
			if maxBytes == 0 {
				maxBytes = kpl.MaxRecordBytes
			}
			maxRecords := tt.limits.MaxRecords
			if maxRecords == 0 {
				maxRecords = kpl.DefaultMaxRecords
			}
			var encoded []kpl.Encoded
			finish := func() {
				t.Helper()
				size := agg.Size()
				enc, ok, err := agg.Finish()
				if err != nil || !ok {
					t.Fatalf("Finish: ok=%v err=%v", ok, err)
				}
				if got := len(enc.Data) + len(enc.PartitionKey); got != size || got > maxBytes {
					t.Fatalf("aggregate counts %d bytes, Size() said %d, limit %d", got, size, maxBytes)
				}
				if enc.Records > maxRecords {
					t.Fatalf("aggregate holds %d records, limit %d", enc.Records, maxRecords)
				}
				encoded = append(encoded, enc)
			}
			for _, u := range in {
				ok, err := agg.Add(u.PartitionKey, u.Data)
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					finish()
					if ok, err := agg.Add(u.PartitionKey, u.Data); !ok || err != nil {
						t.Fatalf("Add to empty aggregate: ok=%v err=%v", ok, err)
					}
				}
			}
			finish()
			if _, ok, _ := agg.Finish(); ok {
				t.Error("Finish on an empty aggregate reported ok")
			}

			var got []userRec
			var kin []types.Record
			for _, e := range encoded {
				kin = append(kin, types.Record{Data: e.Data, PartitionKey: aws.String(e.PartitionKey), SequenceNumber: aws.String("1")})
			}
			out, err := deaggregator.DeaggregateRecords(kin)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range out {
				got = append(got, userRec{PK: aws.ToString(r.PartitionKey), Data: string(r.Data)})
			}
			var want []userRec
			for _, u := range in {
				want = append(want, userRec{PK: u.PartitionKey, Data: string(u.Data)})
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAggregateLimits(t *testing.T) {
	agg, err := kpl.NewAggregate(kpl.Limits{MaxBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := agg.Add("k", make([]byte, 100)); !errors.Is(err, kpl.ErrTooLarge) {
		t.Errorf("oversized record: err = %v, want ErrTooLarge", err)
	}
	if _, err := agg.Add("", []byte("x")); err == nil {
		t.Error("empty partition key accepted")
	}
	for _, l := range []kpl.Limits{{MaxBytes: kpl.MaxRecordBytes + 1}, {MaxBytes: 10}, {MaxRecords: -1}} {
		if _, err := kpl.NewAggregate(l); err == nil {
			t.Errorf("NewAggregate(%+v) accepted invalid limits", l)
		}
	}
}

func aggregateOf(t *testing.T, msg *rec.AggregatedRecord) []byte {
	t.Helper()
	body, err := proto.Marshal(protoadapt.MessageV2Of(msg))
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(body)
	return append(append([]byte{0xF3, 0x89, 0x9A, 0xC2}, body...), sum[:]...)
}

func TestDeaggregateEdgeCases(t *testing.T) {
	valid := aggregateOf(t, &rec.AggregatedRecord{
		PartitionKeyTable: []string{"a"},
		Records:           []*rec.Record{{PartitionKeyIndex: new(uint64(0)), Data: []byte("x")}},
	})
	badDigest := bytes.Clone(valid)
	badDigest[len(badDigest)-1] ^= 0xff
	garbage := []byte("\xF3\x89\x9A\xC2\xff\xff\xff")
	sum := md5.Sum(garbage[4:])
	garbage = append(garbage, sum[:]...)

	tests := []struct {
		name    string
		data    []byte
		want    []userRec
		wantErr error
	}{
		{"plain", []byte("hello"), []userRec{{PK: "p", Data: "hello"}}, nil},
		{"magic only", []byte{0xF3, 0x89, 0x9A, 0xC2}, []userRec{{PK: "p", Data: "\xF3\x89\x9A\xC2"}}, nil},
		{"bad digest is plain", badDigest, []userRec{{PK: "p", Data: string(badDigest)}}, nil},
		{"valid", valid, []userRec{{PK: "a", Data: "x"}}, nil},
		{"garbage protobuf", garbage, nil, kpl.ErrMalformed},
		{"key index out of range", aggregateOf(t, &rec.AggregatedRecord{
			PartitionKeyTable: []string{"a"},
			Records:           []*rec.Record{{PartitionKeyIndex: new(uint64(3)), Data: []byte("x")}},
		}), nil, kpl.ErrMalformed},
		{"hash key index out of range", aggregateOf(t, &rec.AggregatedRecord{
			PartitionKeyTable: []string{"a"},
			Records:           []*rec.Record{{PartitionKeyIndex: new(uint64(0)), ExplicitHashKeyIndex: new(uint64(0)), Data: []byte("x")}},
		}), nil, kpl.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := kpl.Deaggregate(kpl.UserRecord{PartitionKey: "p", Data: tt.data})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			var got []userRec
			for _, u := range out {
				got = append(got, userRec{PK: u.PartitionKey, EHK: u.ExplicitHashKey, Data: string(u.Data)})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzDeaggregate(f *testing.F) {
	f.Add([]byte("plain"))
	f.Add([]byte{0xF3, 0x89, 0x9A, 0xC2, 0x0a, 0x01, 0x61, 0x1a, 0x05, 0x08, 0x00, 0x1a, 0x01, 0x78})
	f.Fuzz(func(t *testing.T, body []byte) {
		sum := md5.Sum(body)
		data := append(append([]byte{0xF3, 0x89, 0x9A, 0xC2}, body...), sum[:]...)
		out, err := kpl.Deaggregate(kpl.UserRecord{PartitionKey: "p", Data: data})
		if err == nil && len(body) > 0 && out == nil {
			t.Fatal("nil result without error")
		}
	})
}

func BenchmarkAggregate(b *testing.B) {
	agg, err := kpl.NewAggregate(kpl.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	line := []byte(`66.249.73.135 - - [17/May/2015:10:05:17 +0000] "GET /blog/geekery/eventdb-ideas.html HTTP/1.1" 200 11418 "-" "Mozilla/5.0 (iPhone; CPU iPhone OS 6_0 like Mac OS X)"`)
	keys := make([]string, 64)
	for i := range keys {
		keys[i] = fmt.Sprintf("10.1.2.%d", i)
	}
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ok, err := agg.Add(keys[i%len(keys)], line)
		if err != nil {
			b.Fatal(err)
		}
		if !ok {
			if _, _, err := agg.Finish(); err != nil {
				b.Fatal(err)
			}
			if _, err := agg.Add(keys[i%len(keys)], line); err != nil {
				b.Fatal(err)
			}
		}
	}
}
