package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/results"
)

// Dead-letter item layout (table APP-deadletter).
const (
	// DefaultDeadLetterTTL is how long dead letters are kept.
	DefaultDeadLetterTTL = 14 * 24 * time.Hour
	// DefaultMaxDeadLetterData keeps an item under DynamoDB's 400 KB limit
	// with room for the other attributes.
	DefaultMaxDeadLetterData = 350 * 1024
	// maxReason bounds the reason text for the same reason.
	maxReason = 4096
	// unknownShard replaces an empty shard id: key attributes cannot be
	// empty, and a dead letter must not be dropped for lack of one.
	unknownShard = "unknown"
)

// DeadLetterOptions configures a DeadLetterWriter.
type DeadLetterOptions struct {
	// Table is the dead-letter table, APP-deadletter. Required.
	Table string
	// TTL sets expires_at = now + TTL (default 14 days).
	TTL time.Duration
	// MaxData truncates the payload kept (default 350 KiB); the item then
	// has data_truncated = true and data_size = the original length.
	MaxData int
	// Clock gives "now" for expires_at; default wall clock.
	Clock interface{ Now() time.Time }
	// Writer configures the underlying ItemWriter.
	Writer WriterOptions
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// DeadLetterWriter implements processors.DeadLetterWriter on DynamoDB.
type DeadLetterWriter struct {
	w    *ItemWriter
	opts DeadLetterOptions
}

// NewDeadLetterWriter returns a writer putting dead letters into
// opts.Table through api.
func NewDeadLetterWriter(api BatchWriteAPI, opts DeadLetterOptions) (*DeadLetterWriter, error) {
	if opts.Table == "" {
		return nil, errors.New("dynamo dead letters: table required")
	}
	if opts.TTL < 0 || opts.MaxData < 0 {
		return nil, fmt.Errorf("dynamo dead letters: negative ttl %v or max data %d", opts.TTL, opts.MaxData)
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultDeadLetterTTL
	}
	if opts.MaxData == 0 {
		opts.MaxData = DefaultMaxDeadLetterData
	}
	if opts.Clock == nil {
		opts.Clock = wallClock{}
	}
	w, err := NewItemWriter(api, opts.Writer)
	if err != nil {
		return nil, err
	}
	return &DeadLetterWriter{w: w, opts: opts}, nil
}

// Stats returns the underlying writer's totals.
func (d *DeadLetterWriter) Stats() WriterStats { return d.w.Stats() }

// WriteDeadLetters writes dls durably. A failure's Index is the position in
// dls. Two dead letters for the same record collapse into the last one.
func (d *DeadLetterWriter) WriteDeadLetters(ctx context.Context, dls []results.DeadLetter) error {
	if len(dls) == 0 {
		return nil
	}
	now := d.opts.Clock.Now()
	items := make([]results.Item, len(dls))
	for i := range dls {
		attrs := DeadLetterItem(&dls[i], now.Add(d.opts.TTL), d.opts.MaxData)
		pk := attrs["pk"].(*types.AttributeValueMemberS).Value
		sk := attrs["sk"].(*types.AttributeValueMemberS).Value
		items[i] = results.Item{Table: d.opts.Table, Key: pk + "|" + sk, Attrs: attrs}
	}
	if err := d.w.WriteItems(ctx, items); err != nil {
		return fmt.Errorf("write dead letters: %w", err)
	}
	return nil
}

// DeadLetterSortKey is the sort key of a dead letter: the sequence number,
// "#", and the sub-sequence zero-padded to 20 digits so aggregated records
// sort in order.
func DeadLetterSortKey(sequence string, sub int64) string {
	return fmt.Sprintf("%s#%020d", sequence, sub)
}

// DeadLetterItem is the APP-deadletter item for dl, expiring at expires.
// Data longer than maxData is truncated and flagged.
func DeadLetterItem(dl *results.DeadLetter, expires time.Time, maxData int) map[string]types.AttributeValue {
	shard := dl.ShardID
	if shard == "" {
		shard = unknownShard
	}
	data := dl.Data
	truncated := len(data) > maxData
	if truncated {
		data = data[:maxData]
	}
	if data == nil {
		data = []byte{}
	}
	item := map[string]types.AttributeValue{
		"pk":             &types.AttributeValueMemberS{Value: shard},
		"sk":             &types.AttributeValueMemberS{Value: DeadLetterSortKey(dl.Sequence, dl.SubSequence)},
		"sequence":       &types.AttributeValueMemberS{Value: dl.Sequence},
		"sub_sequence":   &types.AttributeValueMemberN{Value: strconv.FormatInt(dl.SubSequence, 10)},
		"reason":         &types.AttributeValueMemberS{Value: truncateUTF8(dl.Reason, maxReason)},
		"data":           &types.AttributeValueMemberB{Value: data},
		"data_size":      &types.AttributeValueMemberN{Value: strconv.Itoa(len(dl.Data))},
		"data_truncated": &types.AttributeValueMemberBOOL{Value: truncated},
		"partition_key":  &types.AttributeValueMemberS{Value: dl.PartitionKey},
		"stream":         &types.AttributeValueMemberS{Value: dl.Stream},
		"expires_at":     &types.AttributeValueMemberN{Value: strconv.FormatInt(expires.Unix(), 10)},
	}
	if !dl.ArrivalTime.IsZero() {
		item["arrival_time"] = &types.AttributeValueMemberS{Value: dl.ArrivalTime.UTC().Format(time.RFC3339Nano)}
	}
	return item
}

// DecodeDeadLetter reads an APP-deadletter item back (for replay and
// inspection tools) and reports whether its data was truncated.
func DecodeDeadLetter(item map[string]types.AttributeValue) (results.DeadLetter, bool, error) {
	var dl results.DeadLetter
	str := func(name string) string {
		if v, ok := item[name].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	dl.ShardID = str("pk")
	sk := str("sk")
	i := strings.LastIndexByte(sk, '#')
	if dl.ShardID == "" || i < 0 {
		return dl, false, fmt.Errorf("dead letter item: missing or malformed key pk=%q sk=%q", dl.ShardID, sk)
	}
	dl.Sequence = sk[:i]
	sub, err := strconv.ParseInt(sk[i+1:], 10, 64)
	if err != nil {
		return dl, false, fmt.Errorf("dead letter item: sub-sequence in sk %q: %w", sk, err)
	}
	dl.SubSequence = sub
	dl.Reason = str("reason")
	dl.PartitionKey = str("partition_key")
	dl.Stream = str("stream")
	if at := str("arrival_time"); at != "" {
		if dl.ArrivalTime, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return dl, false, fmt.Errorf("dead letter item: arrival_time: %w", err)
		}
	}
	if b, ok := item["data"].(*types.AttributeValueMemberB); ok {
		dl.Data = b.Value
	}
	truncated := false
	if b, ok := item["data_truncated"].(*types.AttributeValueMemberBOOL); ok {
		truncated = b.Value
	}
	return dl, truncated, nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
