package consumer

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/internal/awsenv"
	"github.com/shardwatch/shardwatch/internal/dashboard"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// runDashboard serves the live dashboard of an application's result tables
// until ctx ends.
func runDashboard(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dashboard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	app := fs.String("app", getenv("SHARDWATCH_APP"), "application name (tables APP-counters, APP-results, APP-alarms)")
	region := fs.String("region", firstNonEmpty(getenv("AWS_REGION"), "us-east-1"), "AWS region")
	addr := fs.String("addr", firstNonEmpty(getenv("SHARDWATCH_DASHBOARD_ADDR"), dashboard.DefaultAddr),
		"listen address; 127.0.0.1 keeps it on this machine (0.0.0.0:8088 to expose it)")
	refresh := fs.Duration("refresh", dashboard.DefaultRefresh, "how often the page polls the API")
	event := fs.String("event", dashboard.DefaultEvent, "counters event the charts show (hit, order, 4xx, 5xx, clickstream names)")
	topnWindow := fs.Duration("topn-window", dashboard.DefaultWindow, "window of the topn processor (processors.topn.window)")
	botWindow := fs.Duration("bot-window", dashboard.DefaultWindow, "window of the botdetect processor (processors.botdetect.window)")
	events := fs.String("events", "", "comma-separated counters events the page offers (default: --event, hit, order, 4xx, 5xx)")
	histWindow := fs.Duration("histogram-window", dashboard.DefaultWindow, "window of the histogram processor")
	histName := fs.String("histogram-name", "histogram", "name of the histogram processor instance")
	visitorsWindow := fs.Duration("visitors-window", dashboard.DefaultWindow, "window of the visitors processor")
	edgesWindow := fs.Duration("edges-window", dashboard.DefaultWindow, "window of the cloudfront-bytes processor")
	anomalyWindow := fs.Duration("anomaly-window", dashboard.DefaultWindow, "score distribution window of the anomaly processor")
	anomalyName := fs.String("anomaly-name", "anomaly", "name of the anomaly processor instance")
	alarms := fs.String("alarms", dashboard.DefaultAlarm, "comma-separated alarm names (processors.orderflood.name) to list; * scans the alarm table (keyed modes)")
	timeBase := fs.String("time", string(dashboard.WallClock), "wall: charts end now; data: they end at the newest bucket (replays of old logs)")
	token := fs.String("token", getenv("SHARDWATCH_DASHBOARD_TOKEN"), "access token required beyond loopback (at least 16 characters; prefer the env variable SHARDWATCH_DASHBOARD_TOKEN, flags show in ps)")
	allow := fs.String("allow", getenv("SHARDWATCH_DASHBOARD_ALLOW"), "comma-separated CIDRs allowed to connect (the TCP peer)")
	logFormat := fs.String("log-format", firstNonEmpty(getenv("SHARDWATCH_LOG_FORMAT"), "console"), "json or console")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("dashboard: unexpected argument %q", fs.Arg(0))
	}
	log, err := newLogger(*logFormat, "info", stderr)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush of stderr

	cfg := dashboard.Config{
		App: *app, Event: *event, TopNWindow: *topnWindow, BotWindow: *botWindow,
		Alarms: splitList(*alarms), Refresh: *refresh, Time: dashboard.TimeBase(*timeBase),
		HistogramWindow: *histWindow, HistogramName: *histName, VisitorsWindow: *visitorsWindow,
		EdgesWindow: *edgesWindow, AnomalyWindow: *anomalyWindow, AnomalyName: *anomalyName,
	}
	if *events != "" {
		cfg.Events = splitList(*events)
	}
	awsCfg, err := awsenv.Load(ctx, *region)
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	allowed, err := records.ParsePrefixes(*allow)
	if err != nil {
		return fmt.Errorf("dashboard: --allow: %w", err)
	}
	srv, err := dashboard.New(cfg, dashboard.Deps{
		Access:   dashboard.Access{Token: *token, Allow: allowed},
		DynamoDB: dynamodb.NewFromConfig(awsCfg, awsenv.LocalDynamoDB(getenv)),
		Clock:    wallClock{},
		Logger:   log.Named("dashboard"),
	})
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", *addr)
	if err != nil {
		return fmt.Errorf("dashboard: listen: %w", err)
	}
	fmt.Fprintf(stdout, "dashboard: %s\n", browseURL(l.Addr()))
	log.Info("dashboard serving", zap.String("app", *app), zap.String("addr", l.Addr().String()),
		zap.Duration("refresh", *refresh), zap.String("time", *timeBase))
	return srv.Serve(ctx, l)
}

// browseURL is the URL to open for a listener: an unspecified address
// (0.0.0.0, ::) is reachable on this machine as 127.0.0.1.
func browseURL(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return "http://" + a.String() + "/"
	}
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(tcp.Port)) + "/"
}
