package consumer

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/internal/awsenv"
)

// runStatus prints the lease table: which worker holds which shard, its
// checkpoint and, when the workers' ops addresses are given, how many
// records each worker has processed per shard.
func runStatus(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	app := fs.String("app", getenv("SHARDWATCH_APP"), "application name (the lease table)")
	region := fs.String("region", firstNonEmpty(getenv("AWS_REGION"), "us-east-1"), "AWS region")
	workers := fs.String("workers", "", "comma-separated ops addresses of workers to read record counts from")
	watch := fs.Duration("watch", 0, "refresh every interval until interrupted (0 = print once)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *app == "" {
		return fmt.Errorf("status: --app is required")
	}
	cfg, err := awsenv.Load(ctx, *region)
	if err != nil {
		return err
	}
	ddb := dynamodb.NewFromConfig(cfg, awsenv.LocalDynamoDB(getenv))
	for {
		if err := printStatus(ctx, ddb, *app, splitList(*workers), stdout); err != nil {
			return err
		}
		if *watch <= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*watch):
		}
	}
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func printStatus(ctx context.Context, ddb *dynamodb.Client, app string, workers []string, w io.Writer) error {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p := dynamodb.NewScanPaginator(ddb, &dynamodb.ScanInput{TableName: aws.String(app), ConsistentRead: aws.Bool(true)})
	type row struct{ shard, owner, ckpt, counter string }
	var rows []row
	for p.HasMorePages() {
		page, err := p.NextPage(sctx)
		if err != nil {
			return fmt.Errorf("status: scan %s: %w", app, err)
		}
		for _, it := range page.Items {
			rows = append(rows, row{str(it["ShardID"]), str(it["AssignedTo"]), str(it["Checkpoint"]), num(it["LeaseCounter"])})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].shard < rows[j].shard })
	counts := map[string]float64{} // worker/shard -> records
	for _, addr := range workers {
		for shard, n := range scrapeRecords(ctx, addr) {
			counts[shard] += n
		}
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\n", time.Now().Format("15:04:05"))
	fmt.Fprintln(tw, "SHARD\tOWNER\tLEASE COUNTER\tRECORDS (this run)\tCHECKPOINT")
	for _, r := range rows {
		owner := r.owner
		if owner == "" {
			owner = "-"
		}
		ck := r.ckpt
		if len(ck) > 24 {
			ck = "…" + ck[len(ck)-20:]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t%s\n", r.shard, owner, r.counter, counts[r.shard], ck)
	}
	return tw.Flush()
}

func str(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func num(v types.AttributeValue) string {
	if n, ok := v.(*types.AttributeValueMemberN); ok {
		return n.Value
	}
	return "-"
}

// scrapeRecords reads shardwatch_records_in_total per shard from a worker.
func scrapeRecords(ctx context.Context, addr string) map[string]float64 {
	out := map[string]float64{}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return out
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 4<<20))
	const prefix = `shardwatch_records_in_total{shard_id="`
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		rest := line[len(prefix):]
		i := strings.Index(rest, `"}`)
		if i < 0 {
			continue
		}
		n, err := strconv.ParseFloat(strings.TrimSpace(rest[i+2:]), 64)
		if err == nil {
			out[rest[:i]] += n
		}
	}
	return out
}
