package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/internal/awsenv"
	"github.com/shardwatch/shardwatch/pkg/processors/histogram"
	"github.com/shardwatch/shardwatch/pkg/processors/orderarchive"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

const queryUsage = `usage: consumer query <result> [flags]

results:
  alarms     the alarm history between two times, listed or totalled per day or month
             (--app, --alarm ID, --from T, --to T, --by day|month)
  orders     a customer's recent orders, newest first (--app, --customer ID | --guest, --limit N)
  histogram  response-size histograms per window and host (--app, --window TIME, --host H, --last N),
             or summed over a period with percentiles and a bar chart (--from T --to T [--host H])
`

// queryAPI is the DynamoDB call the query commands make.
type queryAPI interface {
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// queryTimeout bounds one query command.
const queryTimeout = 30 * time.Second

// runQuery is `consumer query`: it reads results back from DynamoDB.
func runQuery(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, queryUsage)
		return errors.New("query: which result?")
	}
	var q func(context.Context, []string, func(string) string, func(context.Context, string) (queryAPI, error), io.Writer, io.Writer) error
	switch args[0] {
	case "alarms":
		q = queryAlarms
	case "orders":
		q = queryOrders
	case "histogram":
		q = queryHistogram
	case "-h", "--help", "help":
		fmt.Fprint(stdout, queryUsage)
		return nil
	default:
		fmt.Fprint(stderr, queryUsage)
		return fmt.Errorf("query: unknown result %q", args[0])
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	client := func(ctx context.Context, region string) (queryAPI, error) {
		cfg, err := awsenv.Load(ctx, region)
		if err != nil {
			return nil, err
		}
		return dynamodb.NewFromConfig(cfg, awsenv.LocalDynamoDB(getenv)), nil
	}
	return q(ctx, args[1:], getenv, client, stdout, stderr)
}

// queryFlags are the flags every query takes.
type queryFlags struct {
	fs     *flag.FlagSet
	app    *string
	region *string
	table  *string
	json   *bool
}

func newQueryFlags(name string, getenv func(string) string, stderr io.Writer, tableHelp string) queryFlags {
	fs := flag.NewFlagSet("query "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return queryFlags{
		fs:     fs,
		app:    fs.String("app", getenv("SHARDWATCH_APP"), "application name (env SHARDWATCH_APP)"),
		region: fs.String("region", firstNonEmpty(getenv("SHARDWATCH_REGION"), getenv("AWS_REGION"), "us-east-1"), "AWS region"),
		table:  fs.String("table", "", tableHelp),
		json:   fs.Bool("json", false, "print JSON lines instead of a table"),
	}
}

func (f queryFlags) parse(args []string, defaultSuffix string) (string, error) {
	if err := f.fs.Parse(args); err != nil {
		return "", err
	}
	if f.fs.NArg() > 0 {
		return "", fmt.Errorf("%s: unexpected argument %q", f.fs.Name(), f.fs.Arg(0))
	}
	if *f.table != "" {
		return *f.table, nil
	}
	if *f.app == "" {
		return "", fmt.Errorf("%s: --app (or --table) is required", f.fs.Name())
	}
	return *f.app + defaultSuffix, nil
}

// ---- orders ----

func queryOrders(ctx context.Context, args []string, getenv func(string) string, client func(context.Context, string) (queryAPI, error), stdout, stderr io.Writer) error {
	f := newQueryFlags("orders", getenv, stderr, "archive table (default APP-orders)")
	customer := f.fs.String("customer", "", "customer id (as in the orders, e.g. 17850)")
	guest := f.fs.Bool("guest", false, "list orders without a customer id (stored under "+orderarchive.Guest+")")
	limit := f.fs.Int("limit", 20, "most order lines to list (1-1000)")
	table, err := f.parse(args, orderarchive.TableSuffix)
	if err != nil {
		return err
	}
	pk := *customer
	switch {
	case *guest && pk != "":
		return errors.New("query orders: --customer and --guest exclude each other")
	case *guest:
		pk = orderarchive.Guest
	case pk == "":
		return errors.New("query orders: --customer ID (or --guest) is required")
	case *limit < 1 || *limit > 1000:
		return errors.New("query orders: --limit must be between 1 and 1000")
	}
	api, err := client(ctx, *f.region)
	if err != nil {
		return err
	}
	orders, err := recentOrders(ctx, api, table, pk, *limit)
	if err != nil {
		return err
	}
	if *f.json {
		return printJSONLines(stdout, orders, orderJSON)
	}
	return printOrders(stdout, pk, orders)
}

// recentOrders returns up to limit order lines of customer pk, newest
// first (the sort key starts with the invoice date).
func recentOrders(ctx context.Context, api queryAPI, table, pk string, limit int) ([]orderarchive.Order, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": orderarchive.AttrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk}},
		ScanIndexForward:          aws.Bool(false),
	}
	var out []orderarchive.Order
	for len(out) < limit {
		in.Limit = aws.Int32(int32(limit - len(out)))
		page, err := api.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("query %s %s=%q: %w", table, orderarchive.AttrPK, pk, err)
		}
		for _, it := range page.Items {
			o, err := orderarchive.ParseOrder(it)
			if err != nil {
				return nil, fmt.Errorf("query %s: %w", table, err)
			}
			out = append(out, o)
		}
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	return out, nil
}

func printOrders(w io.Writer, pk string, orders []orderarchive.Order) error {
	if len(orders) == 0 {
		_, err := fmt.Fprintf(w, "no orders for customer %s\n", pk)
		return err
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "DATE\tINVOICE\tSTOCK\tQTY\tPRICE\tAMOUNT\tCOUNTRY\tDESCRIPTION\t")
	invoices := map[string]bool{}
	var total float64
	for _, o := range orders {
		price, amount := "-", "-"
		if o.HasPrice {
			price = strconv.FormatFloat(o.UnitPrice, 'f', 2, 64)
			amount = strconv.FormatFloat(o.Amount(), 'f', 2, 64)
			total += o.Amount()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t\n", o.Date.Format("2006-01-02 15:04"), o.Invoice, o.StockCode,
			o.Quantity, price, amount, o.Country, o.Description)
		invoices[o.Invoice] = true
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d order lines of %d invoices for customer %s, newest first; amount %.2f\n", len(orders), len(invoices), pk, total)
	return err
}

func orderJSON(o orderarchive.Order) any {
	type line struct {
		Customer    string    `json:"customer,omitempty"`
		Date        time.Time `json:"invoice_date"`
		Invoice     string    `json:"invoice"`
		StockCode   string    `json:"stock_code"`
		Description string    `json:"description,omitempty"`
		Quantity    int64     `json:"quantity"`
		UnitPrice   *float64  `json:"unit_price,omitempty"`
		Country     string    `json:"country,omitempty"`
		Cancelled   bool      `json:"cancelled,omitempty"`
		Line        int       `json:"line"`
	}
	l := line{Customer: o.Customer, Date: o.Date, Invoice: o.Invoice, StockCode: o.StockCode, Description: o.Description,
		Quantity: o.Quantity, Country: o.Country, Cancelled: o.Cancelled, Line: o.Line}
	if o.HasPrice {
		l.UnitPrice = &o.UnitPrice
	}
	return l
}

func printJSONLines[T any](w io.Writer, xs []T, conv func(T) any) error {
	enc := json.NewEncoder(w)
	for _, x := range xs {
		if err := enc.Encode(conv(x)); err != nil {
			return err
		}
	}
	return nil
}

// ---- histogram ----

func queryHistogram(ctx context.Context, args []string, getenv func(string) string, client func(context.Context, string) (queryAPI, error), stdout, stderr io.Writer) error {
	f := newQueryFlags("histogram", getenv, stderr, "results table (default APP-results)")
	name := f.fs.String("name", histogram.Name, "the histogram processor's name setting")
	size := f.fs.Duration("size", time.Minute, "the processor's window setting")
	at := f.fs.String("window", "", "show the window holding this time (RFC 3339, or 2006-01-02T15:04[:05] in UTC); default the newest windows")
	last := f.fs.Int("last", 5, "without --window: how many of the newest windows to show")
	host := f.fs.String("host", "", "show only this host (virtual host or edge; '-' for records without one)")
	from := f.fs.String("from", "", "sum the windows from this time (with --to; RFC 3339 or 2006-01-02T15:04 UTC)")
	to := f.fs.String("to", "", "sum the windows up to this time (exclusive)")
	table, err := f.parse(args, "-results")
	if err != nil {
		return err
	}
	if *from != "" || *to != "" {
		if *at != "" {
			return errors.New("query histogram: --window and --from/--to exclude each other")
		}
		return sumHistograms(ctx, client, *f.region, table, *name, *size, *from, *to, *host, *f.json, stdout)
	}
	switch {
	case *size < time.Second || (24*time.Hour)%*size != 0:
		return errors.New("query histogram: --size must be whole seconds dividing 24h")
	case *last < 1 || *last > 1440:
		return errors.New("query histogram: --last must be between 1 and 1440")
	}
	keys := histogram.Keys(*name, *size)
	api, err := client(ctx, *f.region)
	if err != nil {
		return err
	}
	var starts []time.Time
	if *at != "" {
		t, err := parseWindowTime(*at)
		if err != nil {
			return err
		}
		starts = []time.Time{t.Truncate(*size).UTC()}
	} else {
		newest, ok, err := newestWindow(ctx, api, table, keys)
		if err != nil {
			return err
		}
		if !ok {
			_, err := fmt.Fprintf(stdout, "no %s results in %s\n", *name, table)
			return err
		}
		for i := range *last {
			starts = append(starts, newest.Truncate(*size).Add(-time.Duration(i)**size).UTC())
		}
	}
	shown := 0
	for _, start := range starts {
		w, ok, err := readWindow(ctx, api, table, keys, start)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		shown++
		if *f.json {
			err = json.NewEncoder(stdout).Encode(histogramJSON(w, *host))
		} else {
			err = printHistogram(stdout, w, *host)
		}
		if err != nil {
			return err
		}
	}
	if shown == 0 {
		_, err := fmt.Fprintf(stdout, "no %s results in %s for the windows asked\n", *name, table)
		return err
	}
	return nil
}

func parseWindowTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("query histogram: --window %q: want RFC 3339 or 2006-01-02T15:04 (UTC)", s)
}

// queryAll returns every item of partition pk.
func queryAll(ctx context.Context, api queryAPI, table, pk string) ([]map[string]types.AttributeValue, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": window.AttrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk}},
	}
	var items []map[string]types.AttributeValue
	for {
		page, err := api.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("query %s %s=%q: %w", table, window.AttrPK, pk, err)
		}
		items = append(items, page.Items...)
		if len(page.LastEvaluatedKey) == 0 {
			return items, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// newestWindow finds the newest event time any shard has seen, from the
// shards' cursor items.
func newestWindow(ctx context.Context, api queryAPI, table string, keys window.Keys) (time.Time, bool, error) {
	items, err := queryAll(ctx, api, table, keys.Cursor())
	if err != nil {
		return time.Time{}, false, err
	}
	var newest time.Time
	for _, it := range items {
		c, err := window.ParseCursor(it)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("%s: %w", keys.Cursor(), err)
		}
		if c.Watermark.After(newest) {
			newest = c.Watermark
		}
	}
	return newest, !newest.IsZero(), nil
}

// shownWindow is one window's histogram as read: the shards' partials
// merged at read time (exact even while a shard has not finalised), and
// whether the stored global item agrees.
type shownWindow struct {
	histogram.Global
	// Stored is true when a global item exists; StoredCurrent when it sums
	// the same partials as the read-time merge.
	Stored, StoredCurrent bool
}

func readWindow(ctx context.Context, api queryAPI, table string, keys window.Keys, start time.Time) (shownWindow, bool, error) {
	var w shownWindow
	items, err := queryAll(ctx, api, table, keys.Window(start))
	if err != nil || len(items) == 0 {
		return w, false, err
	}
	var parts []histogram.Partial
	var stored *histogram.Global
	for _, it := range items {
		kind, _ := window.GetStr(it, window.AttrKind)
		switch kind {
		case window.KindPartial:
			p, err := histogram.ParsePartial(it)
			if err != nil {
				return w, false, err
			}
			parts = append(parts, p)
		case window.KindGlobal:
			g, err := histogram.ParseGlobal(it)
			if err != nil {
				return w, false, err
			}
			stored = &g
		}
	}
	switch {
	case len(parts) > 0:
		w.Global = histogram.Merge(parts, maxShownHosts, maxShownLargest)
	case stored != nil:
		w.Global = *stored // partials gone, the global remains
	default:
		return w, false, nil
	}
	if stored != nil {
		w.Stored = true
		w.StoredCurrent = stored.Merged == w.Merged && stored.Finals == w.Finals && stored.Total.Requests() == w.Total.Requests()
	}
	return w, true, nil
}

// Read-time merge bounds: the processor's own limits cap what partials
// hold, so these only bound the output.
const (
	maxShownHosts   = 100_000
	maxShownLargest = 100
)

func bucketLabels(edges []int64) []string {
	out := make([]string, 0, len(edges)+1)
	for _, e := range edges {
		out = append(out, "<="+histogram.ByteSize(e).String())
	}
	if len(edges) > 0 {
		return append(out, ">"+histogram.ByteSize(edges[len(edges)-1]).String())
	}
	return append(out, "all")
}

func printHistogram(w io.Writer, s shownWindow, host string) error {
	state := "final"
	if s.Finals < s.Merged {
		state = fmt.Sprintf("open (%d of %d shard partials final)", s.Finals, s.Merged)
	}
	fmt.Fprintf(w, "window %s - %s  %s, %d shard(s)", window.FormatTime(s.Start), window.FormatTime(s.End), state, s.Merged)
	if s.Skipped > 0 {
		fmt.Fprintf(w, ", %d partial(s) with other buckets skipped", s.Skipped)
	}
	switch {
	case !s.Stored:
		fmt.Fprint(w, " (no global item yet: merged at read time)")
	case !s.StoredCurrent:
		fmt.Fprint(w, " (global item not current yet: merged at read time)")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "HOST\tREQUESTS\tBYTES\t%s\t\n", strings.Join(bucketLabels(s.Edges), "\t"))
	row := func(name string, r histogram.Row) {
		counts := make([]string, len(r.Counts))
		for i, c := range r.Counts {
			counts[i] = strconv.FormatInt(c, 10)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t\n", name, r.Requests(), r.Bytes, strings.Join(counts, "\t"))
	}
	row("(all)", s.Total)
	found := false
	for _, h := range s.Hosts {
		if host == "" || h.Host == host {
			row(h.Host, h.Row)
			found = true
		}
	}
	if s.Other.Requests() > 0 && host == "" {
		row("(other hosts)", s.Other)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if host != "" && !found {
		fmt.Fprintf(w, "host %q has no row in this window (%d responses of hosts beyond max_hosts are summed as other)\n", host, s.Other.Requests())
	}
	if len(s.Largest) > 0 {
		fmt.Fprintln(w, "largest responses by path:")
		tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		for _, l := range s.Largest {
			if host == "" || l.Host == host {
				fmt.Fprintf(tw, "  %d\t%s\t%s\n", l.Bytes, l.Host, l.Path)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(w)
	return err
}

func histogramJSON(s shownWindow, host string) any {
	type row struct {
		Host     string  `json:"host,omitempty"`
		Requests int64   `json:"requests"`
		Bytes    int64   `json:"bytes"`
		Counts   []int64 `json:"counts"`
	}
	type large struct {
		Bytes int64  `json:"bytes"`
		Host  string `json:"host"`
		Path  string `json:"path"`
	}
	type out struct {
		Start   time.Time `json:"window_start"`
		End     time.Time `json:"window_end"`
		Final   bool      `json:"final"`
		Merged  int       `json:"merged"`
		Finals  int       `json:"finals"`
		Edges   []int64   `json:"edges"`
		Total   row       `json:"total"`
		Hosts   []row     `json:"hosts"`
		Other   row       `json:"other"`
		Largest []large   `json:"largest"`
	}
	o := out{Start: s.Start, End: s.End, Final: s.Merged > 0 && s.Finals == s.Merged, Merged: s.Merged, Finals: s.Finals,
		Edges: s.Edges, Total: row{Requests: s.Total.Requests(), Bytes: s.Total.Bytes, Counts: s.Total.Counts},
		Other: row{Requests: s.Other.Requests(), Bytes: s.Other.Bytes, Counts: s.Other.Counts}, Hosts: []row{}}
	for _, h := range s.Hosts {
		if host == "" || h.Host == host {
			o.Hosts = append(o.Hosts, row{Host: h.Host, Requests: h.Requests(), Bytes: h.Bytes, Counts: h.Counts})
		}
	}
	for _, l := range s.Largest {
		if host == "" || l.Host == host {
			o.Largest = append(o.Largest, large{Bytes: l.Bytes, Host: l.Host, Path: l.Path})
		}
	}
	return o
}

// maxSumWindows bounds the windows one --from/--to query reads (one
// DynamoDB query each): a day of one-minute windows.
const maxSumWindows = 1440

// summed is a histogram summed over a period.
type summed struct {
	From, To            time.Time
	Host                string
	Windows, Skipped    int // windows summed; windows with other buckets left out
	Edges               []int64
	Row                 histogram.Row
	Percentiles         []histogram.Percentile
	OtherHostsInWindows int // windows where the host had no row (summed as other)
}

func sumHistograms(ctx context.Context, client func(context.Context, string) (queryAPI, error), region, table, name string,
	size time.Duration, fromS, toS, host string, asJSON bool, stdout io.Writer) error {
	if fromS == "" || toS == "" {
		return errors.New("query histogram: --from and --to go together")
	}
	from, err := parseWindowTime(fromS)
	if err != nil {
		return err
	}
	to, err := parseWindowTime(toS)
	if err != nil {
		return err
	}
	from, to = from.UTC().Truncate(size), to.UTC()
	n := int((to.Sub(from) + size - 1) / size)
	switch {
	case !to.After(from):
		return errors.New("query histogram: --to must be after --from")
	case n > maxSumWindows:
		return fmt.Errorf("query histogram: %d windows of %s between --from and --to; at most %d per query", n, size, maxSumWindows)
	}
	api, err := client(ctx, region)
	if err != nil {
		return err
	}
	keys := histogram.Keys(name, size)
	sum := summed{From: from, To: to, Host: host}
	for start := from; start.Before(to); start = start.Add(size) {
		w, ok, err := readWindow(ctx, api, table, keys, start)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if sum.Windows == 0 {
			sum.Edges = w.Edges
		} else if !slices.Equal(sum.Edges, w.Edges) {
			sum.Skipped++
			continue
		}
		sum.Windows++
		row, found := w.Total, true
		if host != "" {
			found = false
			for _, h := range w.Hosts {
				if h.Host == host {
					row, found = h.Row, true
				}
			}
		}
		if !found {
			sum.OtherHostsInWindows++
			continue
		}
		sum.Row.Add(row)
	}
	if sum.Windows == 0 {
		_, err := fmt.Fprintf(stdout, "no %s results in %s between %s and %s\n", name, table, window.FormatTime(from), window.FormatTime(to))
		return err
	}
	if len(sum.Row.Counts) < len(sum.Edges)+1 {
		sum.Row.Add(histogram.Row{Counts: make([]int64, len(sum.Edges)+1)})
	}
	sum.Percentiles, _ = histogram.Percentiles(sum.Edges, sum.Row.Counts, 0.5, 0.9, 0.99)
	if asJSON {
		return json.NewEncoder(stdout).Encode(summedJSON(sum))
	}
	return printSummed(stdout, sum)
}

// barWidth is the longest bar of the chart.
const barWidth = 50

func printSummed(w io.Writer, s summed) error {
	who := "all hosts"
	if s.Host != "" {
		who = "host " + strconv.Quote(s.Host)
	}
	fmt.Fprintf(w, "%s - %s  %s: %d window(s), %d responses, %d bytes\n", window.FormatTime(s.From), window.FormatTime(s.To), who,
		s.Windows, s.Row.Requests(), s.Row.Bytes)
	if s.Skipped > 0 {
		fmt.Fprintf(w, "%d window(s) with other buckets left out\n", s.Skipped)
	}
	if s.Host != "" && s.OtherHostsInWindows > 0 {
		fmt.Fprintf(w, "%d window(s) had no row for the host (beyond max_hosts it is summed as other)\n", s.OtherHostsInWindows)
	}
	for _, p := range s.Percentiles {
		fmt.Fprintf(w, "p%-3g %s\n", 100*p.P, p)
	}
	first, last, most := -1, -1, int64(0)
	for i, c := range s.Row.Counts {
		if c > 0 {
			if first < 0 {
				first = i
			}
			last = i
			most = max(most, c)
		}
	}
	if first < 0 {
		_, err := fmt.Fprintln(w, "no responses")
		return err
	}
	tw := tabwriter.NewWriter(w, 2, 4, 1, ' ', 0)
	total := float64(s.Row.Requests())
	for i := first; i <= last; i++ {
		c := s.Row.Counts[i]
		bar := strings.Repeat("#", int((c*barWidth+most-1)/most))
		fmt.Fprintf(tw, "%s B\t%s\t%d\t%.1f%%\n", histogram.BucketLabel(histogram.BucketBounds(s.Edges, i)), bar, c, 100*float64(c)/total)
	}
	return tw.Flush()
}

func summedJSON(s summed) any {
	type pct struct {
		P        float64 `json:"p"`
		Lo       int64   `json:"lo"`
		Hi       int64   `json:"hi"` // -1: overflow bucket
		Estimate int64   `json:"estimate"`
	}
	type out struct {
		From     time.Time `json:"from"`
		To       time.Time `json:"to"`
		Host     string    `json:"host,omitempty"`
		Windows  int       `json:"windows"`
		Skipped  int       `json:"skipped"`
		Edges    []int64   `json:"edges"`
		Requests int64     `json:"requests"`
		Bytes    int64     `json:"bytes"`
		Counts   []int64   `json:"counts"`
		Pcts     []pct     `json:"percentiles"`
	}
	o := out{From: s.From, To: s.To, Host: s.Host, Windows: s.Windows, Skipped: s.Skipped, Edges: s.Edges,
		Requests: s.Row.Requests(), Bytes: s.Row.Bytes, Counts: s.Row.Counts, Pcts: []pct{}}
	for _, p := range s.Percentiles {
		o.Pcts = append(o.Pcts, pct{p.P, p.Lo, p.Hi, p.Estimate})
	}
	return o
}
