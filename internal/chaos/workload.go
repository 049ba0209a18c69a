package chaos

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// Workload generates the harness's records, one event second at a time,
// deterministically from Seed: clickstream hits keyed by client IP (so
// every IP lives on one shard and per-IP top-N counts are exact) and
// orders keyed by invoice (spread over all shards). In odd minutes a burst
// of 3 orders a second from second 10 to 29 breaches the default
// order-flood rule (30 orders in 15 s); the rest of the time one order
// every 4 s never does. Bursts stay clear of minute boundaries, so every
// breaching window ends in the burst's own suppression period.
type Workload struct {
	Seed          uint64
	Base          time.Time // event time of second 0, whole minute
	HitsPerSecond int
	IPs           int
}

// Entry is one record to put.
type Entry struct {
	PartitionKey string
	Data         []byte
}

// Second returns the records of event second i, in event-time order.
func (w *Workload) Second(i int) []Entry {
	r := rand.New(rand.NewPCG(w.Seed, uint64(i)))
	t := w.Base.Add(time.Duration(i) * time.Second).UTC()
	out := make([]Entry, 0, w.HitsPerSecond+3)
	for h := range w.HitsPerSecond {
		// Squaring skews the IP distribution: a few heavy talkers.
		f := r.Float64()
		ip := fmt.Sprintf("10.0.%d.%d", int(f*f*float64(w.IPs))/250, int(f*f*float64(w.IPs))%250)
		status := 200
		switch x := r.IntN(100); {
		case x < 5:
			status = 404
		case x < 7:
			status = 503
		}
		event := "pageview"
		if r.IntN(5) == 0 {
			event = "click"
		}
		ts := t.Add(time.Duration(h) * time.Second / time.Duration(w.HitsPerSecond+1))
		data := fmt.Sprintf(`{"ip":%q,"user_agent":"Mozilla/5.0 (chaos)","host":"shop.example","path":"/p/%d","status":%d,"bytes":%d,"timestamp":%q,"session_id":"s%d","event":%q}`,
			ip, r.IntN(500), status, 100+r.IntN(5000), ts.Format(time.RFC3339Nano), r.IntN(1000), event)
		out = append(out, Entry{PartitionKey: ip, Data: []byte(data)})
	}
	for k := range ordersAt(i) {
		inv := strconv.Itoa(100000 + i*10 + k)
		data := fmt.Sprintf(`{"invoice_no":%q,"stock_code":"C1","description":"chaos","quantity":1,"invoice_date":%q,"unit_price":1.5,"customer_id":"%d","country":"Chaosland"}`,
			inv, t.Format("2006-01-02 15:04:05"), 10000+r.IntN(50))
		out = append(out, Entry{PartitionKey: "inv-" + inv, Data: []byte(data)})
	}
	return out
}

// ordersAt is the number of orders in event second i.
func ordersAt(i int) int {
	minute, sec := i/60, i%60
	if minute%2 == 1 && sec >= 10 && sec < 30 {
		return 3
	}
	if sec%4 == 0 {
		return 1
	}
	return 0
}

// Sentinel returns a hit and an order at event time t: one per shard,
// far after the data, closes every data window by watermark.
func Sentinel(t time.Time, shard int) []Entry {
	t = t.UTC()
	return []Entry{
		{PartitionKey: "sentinel", Data: []byte(fmt.Sprintf(`{"ip":"192.0.2.%d","user_agent":"sentinel","path":"/","status":200,"bytes":1,"timestamp":%q,"event":"sentinel"}`, shard+1, t.Format(time.RFC3339Nano)))},
		{PartitionKey: "sentinel", Data: []byte(fmt.Sprintf(`{"invoice_no":"S%d","stock_code":"S","description":"sentinel","quantity":1,"invoice_date":%q,"unit_price":1,"customer_id":"1","country":"Chaosland"}`, shard, t.Format("2006-01-02 15:04:05")))},
	}
}

// Offline is the exact aggregate of what the stream holds, computed
// independently of the processors (plain encoding/json).
type Offline struct {
	// Records is the number of records read back.
	Records int
	// TopN per 60 s window start: totals and per-IP requests and bytes.
	Windows map[time.Time]*WindowTotals
	// Counters: event name -> bucket ("2006-01-02T15" or
	// "2006-01-02T15:04") -> count.
	Counters map[string]map[string]int64
	// OrdersPerSecond: event second -> orders (distinct invoices).
	OrdersPerSecond map[time.Time]int64
	// Invoices seen, for distinct counting.
	invoices map[time.Time]map[string]bool
	// Undecodable records (should be 0).
	Bad int
}

// WindowTotals are one top-N window's exact totals.
type WindowTotals struct {
	Requests, Bytes int64
	IPs             map[string][2]int64 // requests, bytes
}

// NewOffline returns an empty aggregate.
func NewOffline() *Offline {
	return &Offline{
		Windows:         map[time.Time]*WindowTotals{},
		Counters:        map[string]map[string]int64{},
		OrdersPerSecond: map[time.Time]int64{},
		invoices:        map[time.Time]map[string]bool{},
	}
}

func (o *Offline) count(event string, t time.Time) {
	m := o.Counters[event]
	if m == nil {
		m = map[string]int64{}
		o.Counters[event] = m
	}
	m[t.Format("2006-01-02T15")]++
	m[t.Format("2006-01-02T15:04")]++
}

// Add folds one record in.
func (o *Offline) Add(data []byte) {
	o.Records++
	var v struct {
		IP        string `json:"ip"`
		Status    int    `json:"status"`
		Bytes     int64  `json:"bytes"`
		Timestamp string `json:"timestamp"`
		Event     string `json:"event"`
		Invoice   string `json:"invoice_no"`
		Date      string `json:"invoice_date"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		o.Bad++
		return
	}
	if v.Invoice != "" {
		t, err := time.Parse("2006-01-02 15:04:05", v.Date)
		if err != nil {
			o.Bad++
			return
		}
		o.count("order", t)
		if o.invoices[t] == nil {
			o.invoices[t] = map[string]bool{}
		}
		if !o.invoices[t][v.Invoice] {
			o.invoices[t][v.Invoice] = true
			o.OrdersPerSecond[t]++
		}
		return
	}
	t, err := time.Parse(time.RFC3339Nano, v.Timestamp)
	if err != nil {
		o.Bad++
		return
	}
	t = t.UTC()
	o.count("hit", t)
	switch {
	case v.Status >= 500:
		o.count("5xx", t)
	case v.Status >= 400:
		o.count("4xx", t)
	}
	if v.Event != "" {
		o.count(v.Event, t)
	}
	start := t.Truncate(time.Minute)
	w := o.Windows[start]
	if w == nil {
		w = &WindowTotals{IPs: map[string][2]int64{}}
		o.Windows[start] = w
	}
	w.Requests++
	w.Bytes += v.Bytes
	c := w.IPs[v.IP]
	c[0]++
	c[1] += v.Bytes
	w.IPs[v.IP] = c
}

// Alarms returns the order-flood alarms the stream must raise, as the
// SQL defines them: for each second t holding orders, the orders in
// [t-window, t] (both ends included); a breach where that reaches
// threshold; an alarm at a breach whose previous alarm is at least the
// suppression older. The result maps each alarm's second to its count.
func (o *Offline) Alarms(window, suppression time.Duration, threshold int64) map[time.Time]int64 {
	secs := make([]time.Time, 0, len(o.OrdersPerSecond))
	for s := range o.OrdersPerSecond {
		secs = append(secs, s)
	}
	slices.SortFunc(secs, time.Time.Compare)
	out := map[time.Time]int64{}
	var last time.Time
	for _, t := range secs {
		var n int64
		for x := t.Add(-window); !x.After(t); x = x.Add(time.Second) {
			n += o.OrdersPerSecond[x]
		}
		if n < threshold || (!last.IsZero() && t.Sub(last) < suppression) {
			continue
		}
		out[t], last = n, t
	}
	return out
}
