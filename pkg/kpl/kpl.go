package kpl

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"

	rec "github.com/awslabs/kinesis-aggregation/go/v2/records"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

const (
	// MagicLen is the length of the magic prefix of an aggregated record.
	MagicLen = 4
	// DigestLen is the length of the MD5 trailer of an aggregated record.
	DigestLen = md5.Size
	// MaxRecordBytes is the Kinesis limit for one record: data plus
	// partition key (1 MiB, the stream default).
	MaxRecordBytes = 1 << 20
	// DefaultMaxRecords is the default number of user records per aggregate.
	DefaultMaxRecords = 1000
)

// magic starts every aggregated payload.
var magic = []byte{0xF3, 0x89, 0x9A, 0xC2}

var (
	// ErrTooLarge reports a user record that does not fit even into an
	// empty aggregate; send it as a plain record instead.
	ErrTooLarge = errors.New("kpl: user record does not fit in an aggregate")
	// ErrMalformed reports a payload with the aggregate magic and a valid
	// digest whose content cannot be decoded.
	ErrMalformed = errors.New("kpl: malformed aggregated record")
)

// UserRecord is one record as the producing application sees it.
type UserRecord struct {
	PartitionKey    string
	ExplicitHashKey string // "" when absent
	Data            []byte
}

// Encoded is one finished aggregated Kinesis record.
type Encoded struct {
	// PartitionKey is the first user record's key; Kinesis routes the
	// whole aggregate by it.
	PartitionKey string
	Data         []byte
	// Records is the number of user records inside.
	Records int
}

// Limits bound one aggregated record.
type Limits struct {
	// MaxBytes bounds what the aggregate counts against the Kinesis record
	// limit: payload plus partition key. Default and maximum MaxRecordBytes.
	MaxBytes int
	// MaxRecords bounds the user records per aggregate. Default
	// DefaultMaxRecords.
	MaxRecords int
}

func (l *Limits) setDefaults() error {
	if l.MaxBytes == 0 {
		l.MaxBytes = MaxRecordBytes
	}
	if l.MaxRecords == 0 {
		l.MaxRecords = DefaultMaxRecords
	}
	if l.MaxBytes < 64 || l.MaxBytes > MaxRecordBytes {
		return fmt.Errorf("kpl: max bytes %d outside [64, %d]", l.MaxBytes, MaxRecordBytes)
	}
	if l.MaxRecords < 1 {
		return fmt.Errorf("kpl: max records %d < 1", l.MaxRecords)
	}
	return nil
}

// Aggregate builds one aggregated record at a time. Explicit hash keys are
// not supported: the aggregate is routed by its first partition key. It is
// not safe for concurrent use.
type Aggregate struct {
	limits Limits
	keys   map[string]uint64
	msg    rec.AggregatedRecord
	// protoSize is the exact protobuf size of msg, kept incrementally so
	// Add can decide without marshalling.
	protoSize int
}

// NewAggregate returns an empty builder with the given limits (zero fields
// take defaults).
func NewAggregate(l Limits) (*Aggregate, error) {
	if err := l.setDefaults(); err != nil {
		return nil, err
	}
	return &Aggregate{limits: l, keys: make(map[string]uint64)}, nil
}

// Len returns the number of user records added since the last Finish.
func (a *Aggregate) Len() int { return len(a.msg.Records) }

// Size returns what the aggregate would count against the Kinesis record
// limit if finished now: payload plus partition key.
func (a *Aggregate) Size() int {
	return a.sizeWith(a.protoSize, a.firstKey())
}

func (a *Aggregate) firstKey() string {
	if len(a.msg.PartitionKeyTable) == 0 {
		return ""
	}
	return a.msg.PartitionKeyTable[0]
}

func (a *Aggregate) sizeWith(protoSize int, key string) int {
	return MagicLen + protoSize + DigestLen + len(key)
}

// Add appends a user record and reports whether it fitted. On false the
// aggregate is unchanged: Finish it and add the record again. ErrTooLarge
// means the record cannot fit even into an empty aggregate. data is kept
// (not copied) until Finish.
func (a *Aggregate) Add(partitionKey string, data []byte) (bool, error) {
	if partitionKey == "" {
		return false, errors.New("kpl: empty partition key")
	}
	if len(a.msg.Records) >= a.limits.MaxRecords {
		return false, nil
	}
	idx, known := a.keys[partitionKey]
	grow := 0
	if !known {
		idx = uint64(len(a.msg.PartitionKeyTable))
		grow += protowire.SizeTag(1) + protowire.SizeBytes(len(partitionKey))
	}
	inner := protowire.SizeTag(1) + protowire.SizeVarint(idx) +
		protowire.SizeTag(3) + protowire.SizeBytes(len(data))
	grow += protowire.SizeTag(3) + protowire.SizeBytes(inner)

	first := a.firstKey()
	if first == "" {
		first = partitionKey
	}
	if a.sizeWith(a.protoSize+grow, first) > a.limits.MaxBytes {
		if len(a.msg.Records) == 0 {
			return false, fmt.Errorf("%w: %d bytes of data, limit %d", ErrTooLarge, len(data), a.limits.MaxBytes)
		}
		return false, nil
	}
	if !known {
		a.keys[partitionKey] = idx
		a.msg.PartitionKeyTable = append(a.msg.PartitionKeyTable, partitionKey)
	}
	if data == nil {
		// proto2 "required bytes": nil would marshal as a missing field.
		data = []byte{}
	}
	a.msg.Records = append(a.msg.Records, &rec.Record{PartitionKeyIndex: new(idx), Data: data})
	a.protoSize += grow
	return true, nil
}

// Finish encodes the aggregate and resets the builder. ok is false when
// nothing was added.
func (a *Aggregate) Finish() (enc Encoded, ok bool, err error) {
	if len(a.msg.Records) == 0 {
		return Encoded{}, false, nil
	}
	defer a.reset()
	// The awslabs types are APIv1 structs: adapt them to the v2 runtime.
	body, err := proto.Marshal(protoadapt.MessageV2Of(&a.msg))
	if err != nil {
		return Encoded{}, false, fmt.Errorf("kpl: marshal aggregate: %w", err)
	}
	if len(body) != a.protoSize {
		// The incremental size decides the limits; a mismatch would let an
		// aggregate exceed them.
		return Encoded{}, false, fmt.Errorf("kpl: marshalled %d bytes, computed %d", len(body), a.protoSize)
	}
	out := make([]byte, 0, MagicLen+len(body)+DigestLen)
	out = append(out, magic...)
	out = append(out, body...)
	sum := md5.Sum(body)
	out = append(out, sum[:]...)
	return Encoded{PartitionKey: a.firstKey(), Data: out, Records: len(a.msg.Records)}, true, nil
}

func (a *Aggregate) reset() {
	clear(a.keys)
	clear(a.msg.Records) // drop references to user data
	a.msg = rec.AggregatedRecord{
		PartitionKeyTable: a.msg.PartitionKeyTable[:0],
		Records:           a.msg.Records[:0],
	}
	a.protoSize = 0
}

// IsAggregated reports whether data carries the aggregate magic and a
// matching MD5 digest: the test the consumer engine's deaggregator applies.
func IsAggregated(data []byte) bool {
	if len(data) < MagicLen+DigestLen+1 || !bytes.Equal(data[:MagicLen], magic) {
		return false
	}
	body := data[MagicLen : len(data)-DigestLen]
	sum := md5.Sum(body)
	return bytes.Equal(sum[:], data[len(data)-DigestLen:])
}

// Deaggregate expands an aggregated record into its user records. A record
// that is not aggregated (see IsAggregated) comes back unchanged as the
// only element. User record data is a copy, independent of r.Data.
func Deaggregate(r UserRecord) ([]UserRecord, error) {
	if !IsAggregated(r.Data) {
		return []UserRecord{r}, nil
	}
	var msg rec.AggregatedRecord
	if err := proto.Unmarshal(r.Data[MagicLen:len(r.Data)-DigestLen], protoadapt.MessageV2Of(&msg)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	out := make([]UserRecord, 0, len(msg.Records))
	for i, ur := range msg.Records {
		pk := ur.GetPartitionKeyIndex()
		if pk >= uint64(len(msg.PartitionKeyTable)) {
			return nil, fmt.Errorf("%w: record %d: partition key index %d of %d", ErrMalformed, i, pk, len(msg.PartitionKeyTable))
		}
		u := UserRecord{PartitionKey: msg.PartitionKeyTable[pk], Data: ur.Data}
		if ur.ExplicitHashKeyIndex != nil {
			ehk := *ur.ExplicitHashKeyIndex
			if ehk >= uint64(len(msg.ExplicitHashKeyTable)) {
				return nil, fmt.Errorf("%w: record %d: explicit hash key index %d of %d", ErrMalformed, i, ehk, len(msg.ExplicitHashKeyTable))
			}
			u.ExplicitHashKey = msg.ExplicitHashKeyTable[ehk]
		}
		out = append(out, u)
	}
	return out, nil
}
