package consumer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

// alarmRow is one alarm-history item as `query alarms` shows it.
type alarmRow struct {
	Alarm    string    `json:"alarm"`
	Time     time.Time `json:"time"`
	Orders   int64     `json:"orders"`
	Triggers int64     `json:"trigger_count"`
	State    string    `json:"state"`
	Text     string    `json:"text,omitempty"`
}

// alarmTotal sums the alarms of one day or month.
type alarmTotal struct {
	Bucket    string    `json:"bucket"`
	Alarms    int       `json:"alarms"`
	MaxOrders int64     `json:"max_orders"`
	First     time.Time `json:"first"`
	Last      time.Time `json:"last"`
}

// queryAlarms is `consumer query alarms`: the alarm history of one alarm
// between two times, listed or totalled per day or month.
func queryAlarms(ctx context.Context, args []string, getenv func(string) string, client func(context.Context, string) (queryAPI, error), stdout, stderr io.Writer) error {
	f := newQueryFlags("alarms", getenv, stderr, "alarm-history table (default APP-alarms)")
	alarm := f.fs.String("alarm", "order-flood", "alarm id: the processor's name (global mode), or name#customer#ID / name#ip#IP")
	from := f.fs.String("from", "", "first alarm time (RFC 3339, 2006-01-02T15:04[:05] or 2006-01-02, UTC); default the first")
	to := f.fs.String("to", "", "alarms before this time (same forms); default no end")
	by := f.fs.String("by", "", "total per day or month instead of listing")
	table, err := f.parse(args, "-alarms")
	if err != nil {
		return err
	}
	lo, hi := "0", "9" // every RFC 3339 time sorts between them
	if *from != "" {
		t, err := parseQueryTime("--from", *from)
		if err != nil {
			return err
		}
		lo = t.UTC().Format(time.RFC3339)
	}
	if *to != "" {
		t, err := parseQueryTime("--to", *to)
		if err != nil {
			return err
		}
		// The sort key is RFC 3339 to the second: "before to" is "up to
		// the second before it".
		hi = t.UTC().Add(-time.Second).Format(time.RFC3339)
	}
	if *by != "" && *by != "day" && *by != "month" {
		return fmt.Errorf("query alarms: --by must be day or month, not %q", *by)
	}
	api, err := client(ctx, *f.region)
	if err != nil {
		return err
	}
	rows, err := alarmHistory(ctx, api, table, *alarm, lo, hi)
	if err != nil {
		return err
	}
	if *by != "" {
		totals := totalAlarms(rows, *by)
		if *f.json {
			return printJSONLines(stdout, totals, func(t alarmTotal) any { return t })
		}
		return printAlarmTotals(stdout, *by, totals)
	}
	if *f.json {
		return printJSONLines(stdout, rows, func(r alarmRow) any { return r })
	}
	return printAlarms(stdout, *alarm, rows)
}

func parseQueryTime(flagName, s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("query: %s %q: want RFC 3339, 2006-01-02T15:04 or 2006-01-02 (UTC)", flagName, s)
}

// alarmHistory returns the alarms of id with sort keys in [lo, hi],
// oldest first.
func alarmHistory(ctx context.Context, api queryAPI, table, id, lo, hi string) ([]alarmRow, error) {
	in := &dynamodb.QueryInput{
		TableName:                aws.String(table),
		KeyConditionExpression:   aws.String("#a = :a AND #p BETWEEN :lo AND :hi"),
		ExpressionAttributeNames: map[string]string{"#a": "alarm", "#p": "period"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":a": &types.AttributeValueMemberS{Value: id}, ":lo": &types.AttributeValueMemberS{Value: lo},
			":hi": &types.AttributeValueMemberS{Value: hi},
		},
	}
	var out []alarmRow
	for {
		page, err := api.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("query %s alarm=%q: %w", table, id, err)
		}
		for _, it := range page.Items {
			r, err := parseAlarmRow(it)
			if err != nil {
				return nil, fmt.Errorf("query %s: %w", table, err)
			}
			out = append(out, r)
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

func parseAlarmRow(it map[string]types.AttributeValue) (alarmRow, error) {
	s := func(name string) string { v, _ := window.GetStr(it, name); return v }
	n := func(name string) int64 { v, _ := window.GetInt(it, name); return v }
	r := alarmRow{Alarm: s("alarm"), Orders: n("orders"), Triggers: n("trigger_count"), State: s("state"), Text: s("text")}
	// The body has the time to the millisecond; the sort key to the second.
	var body struct {
		Time time.Time `json:"time"`
	}
	if json.Unmarshal([]byte(s("body")), &body) == nil && !body.Time.IsZero() {
		r.Time = body.Time.UTC()
		return r, nil
	}
	t, err := time.Parse(time.RFC3339, s("period"))
	if err != nil {
		return r, fmt.Errorf("alarm item period %q: %w", s("period"), err)
	}
	r.Time = t.UTC()
	return r, nil
}

// totalAlarms sums rows (oldest first) per UTC day or month.
func totalAlarms(rows []alarmRow, by string) []alarmTotal {
	layout := "2006-01-02"
	if by == "month" {
		layout = "2006-01"
	}
	var out []alarmTotal
	for _, r := range rows {
		b := r.Time.Format(layout)
		if len(out) == 0 || out[len(out)-1].Bucket != b {
			out = append(out, alarmTotal{Bucket: b, First: r.Time})
		}
		t := &out[len(out)-1]
		t.Alarms++
		t.MaxOrders = max(t.MaxOrders, r.Orders)
		t.Last = r.Time
	}
	return out
}

func printAlarms(w io.Writer, id string, rows []alarmRow) error {
	if len(rows) == 0 {
		_, err := fmt.Fprintf(w, "no %s alarms in the period\n", id)
		return err
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME (UTC)\tORDERS\tTRIGGERS\tSTATE\tTEXT")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", r.Time.Format("2006-01-02 15:04:05.000"), r.Orders, r.Triggers, r.State, r.Text)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d %s alarms from %s to %s\n", len(rows), id, rows[0].Time.Format(time.RFC3339), rows[len(rows)-1].Time.Format(time.RFC3339))
	return err
}

func printAlarmTotals(w io.Writer, by string, totals []alarmTotal) error {
	if len(totals) == 0 {
		_, err := fmt.Fprintln(w, "no alarms in the period")
		return err
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\tALARMS\tMAX ORDERS\tFIRST (UTC)\tLAST (UTC)\n", map[string]string{"day": "DAY", "month": "MONTH"}[by])
	n := 0
	for _, t := range totals {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", t.Bucket, t.Alarms, t.MaxOrders, t.First.Format("2006-01-02 15:04:05"), t.Last.Format("2006-01-02 15:04:05"))
		n += t.Alarms
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d alarms in %d %ss\n", n, len(totals), by)
	return err
}
