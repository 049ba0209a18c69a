package ddbmeter

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// Kind says whether units were read or write units.
type Kind string

// The two kinds of units.
const (
	Read  Kind = "read"
	Write Kind = "write"
)

// Key names one sum.
type Key struct {
	Table string
	Kind  Kind
}

// Meter sums consumed capacity. The zero value is ready; it is safe for
// concurrent use.
type Meter struct {
	// OnUnits, if set, is called with every call's units (e.g. to feed a
	// Prometheus counter). It must be cheap and not block.
	OnUnits func(table string, kind Kind, units float64)

	mu    sync.Mutex
	units map[Key]float64
	calls map[Key]int64
}

// Options installs the meter on a DynamoDB client:
// dynamodb.NewFromConfig(cfg, meter.Options).
func (m *Meter) Options(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("ddbmeter", m.handle), middleware.After)
	})
}

func (m *Meter) handle(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	kind, table := ask(in.Parameters)
	out, md, err := next.HandleInitialize(ctx, in)
	if err == nil {
		for _, c := range consumed(out.Result) {
			m.add(aws.ToString(c.TableName), kind, aws.ToFloat64(c.CapacityUnits))
		}
	} else if kind == Write && table != "" {
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			m.add(table, Write, 1) // not reported on the error; at least 1 unit
		}
	}
	return out, md, err
}

func (m *Meter) add(table string, kind Kind, units float64) {
	if table == "" || kind == "" {
		return
	}
	m.mu.Lock()
	if m.units == nil {
		m.units, m.calls = map[Key]float64{}, map[Key]int64{}
	}
	k := Key{table, kind}
	m.units[k] += units
	m.calls[k]++
	m.mu.Unlock()
	if m.OnUnits != nil {
		m.OnUnits(table, kind, units)
	}
}

// Units returns the sums so far.
func (m *Meter) Units() map[Key]float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[Key]float64, len(m.units))
	for k, v := range m.units {
		out[k] = v
	}
	return out
}

// Calls returns how many metered calls each sum covers.
func (m *Meter) Calls() map[Key]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[Key]int64, len(m.calls))
	for k, v := range m.calls {
		out[k] = v
	}
	return out
}

// Tables lists the tables metered so far, sorted.
func (m *Meter) Tables() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.units {
		if !slices.Contains(out, k.Table) {
			out = append(out, k.Table)
		}
	}
	slices.SortFunc(out, strings.Compare)
	return out
}

var total = types.ReturnConsumedCapacityTotal

// ask sets ReturnConsumedCapacity on the calls that can return it and
// says what they consume (and, for single-item writes, the table).
func ask(p any) (Kind, string) {
	switch in := p.(type) {
	case *dynamodb.PutItemInput:
		setIfEmpty(&in.ReturnConsumedCapacity)
		return Write, aws.ToString(in.TableName)
	case *dynamodb.UpdateItemInput:
		setIfEmpty(&in.ReturnConsumedCapacity)
		return Write, aws.ToString(in.TableName)
	case *dynamodb.DeleteItemInput:
		setIfEmpty(&in.ReturnConsumedCapacity)
		return Write, aws.ToString(in.TableName)
	case *dynamodb.BatchWriteItemInput:
		setIfEmpty(&in.ReturnConsumedCapacity)
		return Write, ""
	case *dynamodb.TransactWriteItemsInput:
		setIfEmpty(&in.ReturnConsumedCapacity)
		return Write, ""
	case *dynamodb.GetItemInput:
		setIfEmpty(&in.ReturnConsumedCapacity)
		return Read, aws.ToString(in.TableName)
	case *dynamodb.BatchGetItemInput:
		setIfEmpty(&in.ReturnConsumedCapacity)
		return Read, ""
	case *dynamodb.QueryInput:
		setIfEmpty(&in.ReturnConsumedCapacity)
		return Read, aws.ToString(in.TableName)
	case *dynamodb.ScanInput:
		setIfEmpty(&in.ReturnConsumedCapacity)
		return Read, aws.ToString(in.TableName)
	case *dynamodb.TransactGetItemsInput:
		setIfEmpty(&in.ReturnConsumedCapacity)
		return Read, ""
	}
	return "", ""
}

func setIfEmpty(v *types.ReturnConsumedCapacity) {
	if *v == "" || *v == types.ReturnConsumedCapacityNone {
		*v = total
	}
}

func consumed(r any) []types.ConsumedCapacity {
	one := func(c *types.ConsumedCapacity) []types.ConsumedCapacity {
		if c == nil {
			return nil
		}
		return []types.ConsumedCapacity{*c}
	}
	switch out := r.(type) {
	case *dynamodb.PutItemOutput:
		return one(out.ConsumedCapacity)
	case *dynamodb.UpdateItemOutput:
		return one(out.ConsumedCapacity)
	case *dynamodb.DeleteItemOutput:
		return one(out.ConsumedCapacity)
	case *dynamodb.GetItemOutput:
		return one(out.ConsumedCapacity)
	case *dynamodb.QueryOutput:
		return one(out.ConsumedCapacity)
	case *dynamodb.ScanOutput:
		return one(out.ConsumedCapacity)
	case *dynamodb.BatchWriteItemOutput:
		return out.ConsumedCapacity
	case *dynamodb.BatchGetItemOutput:
		return out.ConsumedCapacity
	case *dynamodb.TransactWriteItemsOutput:
		return out.ConsumedCapacity
	case *dynamodb.TransactGetItemsOutput:
		return out.ConsumedCapacity
	}
	return nil
}
