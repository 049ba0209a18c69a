package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwatch/shardwatch/pkg/records"
)

// Input files under Config.DataDir.
const (
	zakerFile  = "access/zaker-access-10k.log"
	ordersFile = "orders/online-retail-2010-12.csv"
)

// tsMark stands for the put time in a payload template.
const tsMark = "\x01TS\x01"

// template is a payload with the put time left out: prefix + time + suffix.
type template struct {
	key            string // partition key
	prefix, suffix []byte
	timeLayout     string
}

func (t *template) render(dst []byte, now time.Time) []byte {
	dst = append(dst, t.prefix...)
	dst = now.UTC().AppendFormat(dst, t.timeLayout)
	return append(dst, t.suffix...)
}

// payloads are real records re-timed at put time: the Zaker access log's
// hits as JSON clickstream hits (partition key: client IP, so each IP's
// requests stay on one shard) and the Online Retail orders as orders-json
// (random partition keys, a fresh invoice number per order).
type payloads struct {
	hits   []template
	orders []template
}

func loadPayloads(dataDir string) (*payloads, error) {
	p := &payloads{}
	err := eachLine(filepath.Join(dataDir, zakerFile), func(l []byte) error {
		var d records.CombinedDecoder
		var r records.Record
		if d.Decode(l, &r) != nil {
			return nil
		}
		j, err := json.Marshal(map[string]any{
			"ip": r.ClientIP, "user_agent": r.UserAgent, "referer": r.Referer, "timestamp": tsMark,
			"path": r.Path, "status": r.Status, "bytes": r.Bytes, "host": "www.zanbil.ir", "event": "pageview", "method": r.Method,
		})
		if err != nil {
			return err
		}
		t, err := split(j, r.ClientIP, "2006-01-02T15:04:05.000Z07:00")
		if err == nil {
			p.hits = append(p.hits, t)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	n := 0
	err = eachLine(filepath.Join(dataDir, ordersFile), func(l []byte) error {
		var d records.OrderCSVDecoder
		var r records.Record
		if d.Decode(l, &r) != nil || r.Quantity <= 0 {
			return nil
		}
		n++
		j, err := json.Marshal(map[string]any{
			"invoice_no": "B" + strconv.Itoa(n), "stock_code": r.StockCode, "description": r.Description, "quantity": r.Quantity,
			"invoice_date": tsMark, "unit_price": r.UnitPrice, "customer_id": r.CustomerID, "country": r.Country,
		})
		if err != nil {
			return err
		}
		t, err := split(j, "order-"+strconv.Itoa(n), "2006-01-02 15:04:05")
		if err == nil {
			p.orders = append(p.orders, t)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(p.hits) == 0 || len(p.orders) == 0 {
		return nil, fmt.Errorf("no usable records in %s", dataDir)
	}
	return p, nil
}

func eachLine(path string, f func([]byte) error) error {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if err := f(sc.Bytes()); err != nil {
			return err
		}
	}
	return sc.Err()
}

func split(j []byte, key, layout string) (template, error) {
	mark, _ := json.Marshal(tsMark)
	i := bytes.Index(j, mark[1:len(mark)-1])
	if i < 0 {
		return template{}, errors.New("timestamp mark lost in JSON")
	}
	return template{key: key, prefix: bytes.Clone(j[:i]), suffix: bytes.Clone(j[i+len(mark)-2:]), timeLayout: layout}, nil
}

// posKey identifies a record in the stream: a hash of shard id and
// sequence number (64 bits keep the harness's maps small; a collision
// among a few hundred thousand keys has odds of ~1e-9).
func posKey(shard, seq string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(shard); i++ {
		h = (h ^ uint64(shard[i])) * prime
	}
	h = (h ^ ' ') * prime
	for i := 0; i < len(seq); i++ {
		h = (h ^ uint64(seq[i])) * prime
	}
	return h
}

// producer puts records and remembers when each was put.
type producer struct {
	kc     *kinesis.Client
	stream string

	mu   sync.Mutex
	puts map[uint64]int64 // posKey -> put time, unix ns

	nextHit atomic.Int64
	failed  atomic.Int64
}

func newProducer(kc *kinesis.Client, stream string, hint int) *producer {
	return &producer{kc: kc, stream: stream, puts: make(map[uint64]int64, hint)}
}

type entry struct {
	key  string
	data []byte
	at   time.Time
}

// hits renders the next n hits (cycling through the log) put at now.
func (p *producer) hits(pl *payloads, n int, now time.Time) []entry {
	out := make([]entry, n)
	for i := range out {
		t := &pl.hits[int(p.nextHit.Add(1)-1)%len(pl.hits)]
		out[i] = entry{key: t.key, data: t.render(nil, now), at: now}
	}
	return out
}

// put writes entries with PutRecords (at most 500 per call), retrying
// failed entries, and records the put time of each stored record under
// the key the audit logs will show. It returns the keys.
func (p *producer) put(ctx context.Context, es []entry) ([]uint64, error) {
	keys := make([]uint64, 0, len(es))
	for len(es) > 0 {
		n := min(len(es), 500)
		batch := es[:n]
		es = es[n:]
		for attempt := 1; len(batch) > 0; attempt++ {
			in := &kinesis.PutRecordsInput{StreamName: aws.String(p.stream), Records: make([]kintypes.PutRecordsRequestEntry, len(batch))}
			for i, e := range batch {
				in.Records[i] = kintypes.PutRecordsRequestEntry{PartitionKey: aws.String(e.key), Data: e.data}
			}
			out, err := p.kc.PutRecords(ctx, in)
			if err != nil {
				if ctx.Err() != nil || attempt >= 10 {
					return keys, fmt.Errorf("put records: %w", err)
				}
				if err := sleep(ctx, time.Duration(attempt)*50*time.Millisecond); err != nil {
					return keys, err
				}
				continue
			}
			var retry []entry
			p.mu.Lock()
			for i, r := range out.Records {
				if r.ErrorCode != nil {
					retry = append(retry, batch[i])
					continue
				}
				k := posKey(aws.ToString(r.ShardId), aws.ToString(r.SequenceNumber))
				p.puts[k] = batch[i].at.UnixNano()
				keys = append(keys, k)
			}
			p.mu.Unlock()
			if len(retry) > 0 {
				p.failed.Add(int64(len(retry)))
				if attempt >= 10 {
					return keys, fmt.Errorf("put records: %d entries still failing", len(retry))
				}
				if err := sleep(ctx, time.Duration(attempt)*50*time.Millisecond); err != nil {
					return keys, err
				}
			}
			batch = retry
		}
	}
	return keys, nil
}

// count returns how many records were stored so far.
func (p *producer) count() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int64(len(p.puts))
}

func (p *producer) putTime(k uint64) (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.puts[k]
	return t, ok
}

// paced puts n hits at rate records/s in ticks of 50 ms, several calls in
// flight, each record stamped with the time its call started. It returns
// the keys put and when the first and last calls started.
func (p *producer) paced(ctx context.Context, pl *payloads, n, rate int) (keys []uint64, first, last time.Time, err error) {
	const tick = 50 * time.Millisecond
	per := max(1, rate*int(tick)/int(time.Second))
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	sem := make(chan struct{}, 8)
	t := time.NewTicker(tick)
	defer t.Stop()
	first = time.Now()
	for sent := 0; sent < n; {
		k := min(per, n-sent)
		sent += k
		now := time.Now()
		es := p.hits(pl, k, now)
		last = now
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return keys, first, last, ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ks, err := p.put(ctx, es)
			mu.Lock()
			keys = append(keys, ks...)
			if err != nil {
				errs = append(errs, err)
			}
			mu.Unlock()
		}()
		select {
		case <-t.C:
		case <-ctx.Done():
			wg.Wait()
			return keys, first, last, ctx.Err()
		}
	}
	wg.Wait()
	return keys, first, last, errors.Join(errs...)
}

// flood puts n hits as fast as the stream takes them (4 writers of 500).
func (p *producer) flood(ctx context.Context, pl *payloads, n int) (keys []uint64, first time.Time, err error) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
		left atomic.Int64
	)
	left.Store(int64(n))
	first = time.Now()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				k := min(int64(500), left.Add(-500)+500)
				if k <= 0 {
					return
				}
				ks, err := p.put(ctx, p.hits(pl, int(k), time.Now()))
				mu.Lock()
				keys = append(keys, ks...)
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return keys, first, errors.Join(errs...)
}

// burst puts n orders stamped now in one call.
func (p *producer) burst(ctx context.Context, pl *payloads, n int) ([]uint64, time.Time, error) {
	now := time.Now()
	es := make([]entry, n)
	off := rand.IntN(len(pl.orders))
	for i := range es {
		t := &pl.orders[(off+i)%len(pl.orders)]
		// A fresh invoice number per order: the default counts invoices.
		data := t.render(nil, now)
		data = bytes.Replace(data, []byte(`"invoice_no":"B`), []byte(`"invoice_no":"B`+strconv.FormatInt(now.UnixNano(), 36)+"-"), 1)
		es[i] = entry{key: t.key + "-" + strconv.Itoa(rand.IntN(1<<30)), data: data, at: now}
	}
	keys, err := p.put(ctx, es)
	return keys, now, err
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
