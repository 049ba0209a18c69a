package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/internal/collector"
	"github.com/shardwatch/shardwatch/pkg/records"
)

const collectUsage = `usage: producer collect [flags]

Serves a tracking pixel on --listen: GET /collect (204) and GET /collect.gif
(1x1 GIF), or POST a small JSON/form body {"url"|"p", "r", "e"}. Each hit
becomes one clickstream record (client IP, User-Agent, page, referrer,
session id from the sw_sid cookie, timestamp). When the buffer is full the
collector answers 503. On SIGINT/SIGTERM it stops accepting, finishes the
requests in flight and drains the buffer into the stream.

flags:
`

type collectFlags struct {
	common
	listen         string
	trustedProxies string
	cookieSecure   bool
	maxBody        int64
	maxHeader      int
	rateLimit      float64
	rateBurst      int
	maxClients     int
}

func runCollect(ctx context.Context, args []string, e env) error {
	var f collectFlags
	fs := flag.NewFlagSet("collect", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(e.stderr, collectUsage); fs.PrintDefaults() }
	f.register(fs, e.getenv)
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8080", "address to serve on")
	fs.StringVar(&f.trustedProxies, "trusted-proxies", "", "comma-separated CIDRs whose X-Forwarded-For is trusted")
	fs.BoolVar(&f.cookieSecure, "cookie-secure", true, "mark the session cookie Secure (false only for plain-HTTP demos)")
	fs.Int64Var(&f.maxBody, "max-body", 8<<10, "largest POST body in bytes (413 above)")
	fs.IntVar(&f.maxHeader, "max-header", 8<<10, "largest request header in bytes (431 above)")
	fs.Float64Var(&f.rateLimit, "rate-limit", 20, "sustained requests/s per client IP (429 above; negative disables)")
	fs.IntVar(&f.rateBurst, "rate-burst", 40, "requests a client IP may burst above --rate-limit")
	fs.IntVar(&f.maxClients, "max-clients", 10000, "client IPs whose rate is tracked at once (bounded memory)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("collect: unexpected arguments %q", fs.Args())
	}
	if err := f.validate(); err != nil {
		return err
	}
	proxies, err := records.ParsePrefixes(f.trustedProxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	if f.maxBody <= 0 || f.maxHeader <= 0 {
		return errors.New("--max-body and --max-header must be positive")
	}
	ln, err := e.listen(ctx, f.listen)
	if err != nil {
		return fmt.Errorf("collect: %w", err)
	}

	p, err := startPipeline(ctx, &f.common, e, "collect")
	if err != nil {
		ln.Close()
		return err
	}
	col, err := collector.New(collector.Config{
		TrustedProxies:  proxies,
		CookieSecure:    f.cookieSecure,
		PartitionKey:    f.keyMode,
		MaxBodyBytes:    f.maxBody,
		MaxHeaderBytes:  f.maxHeader,
		ShutdownTimeout: f.shutdownTimeout,
		RateLimit:       f.rateLimit,
		RateBurst:       f.rateBurst,
		MaxClients:      f.maxClients,
	}, p.prod, p.log, collector.WithClock(e.now))
	if err != nil {
		ln.Close()
		_ = p.finish(ctx, "collect") // nothing was accepted yet
		return err
	}
	p.extra = func() string {
		st := col.Stats()
		return fmt.Sprintf("hits=%d rejected_full=%d bad_requests=%d", st.Accepted, st.Full, st.BadRequest)
	}
	p.log.Info("collector listening", zap.String("addr", ln.Addr().String()))
	// Serve returns after the graceful HTTP shutdown: every accepted hit
	// is in the producer's buffer, which finish drains.
	srcErr := col.Serve(ctx, ln)
	if err := p.finish(ctx, "collect"); err != nil {
		return err
	}
	return srcErr
}
