package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/internal/putter"
	"github.com/shardwatch/shardwatch/internal/traffic"
	"github.com/shardwatch/shardwatch/pkg/records"
)

const replayUsage = `usage: producer replay [flags] FILE...

Sends every line of each FILE as one record, byte for byte without the line
end: Apache/nginx combined access logs, CloudFront standard logs or the Online
Retail orders CSV (format sniffed per line unless --format says). Header
lines (CloudFront "#Version"/"#Fields", the CSV header row) are skipped.
The consumer decodes CloudFront records with the standard column order
(records.CloudFrontStandardFields) because headers are not sent; a file
whose #Fields differ is replayed with a warning.

Records keep their original spacing in time, divided by --speed; a gap is
never negative (elastic-apache logs are not time-ordered) and never longer
than --max-gap. --speed max sends as fast as the stream accepts.

flags:
`

// maxLine bounds one line: a longer one cannot be a Kinesis record.
const maxLine = putter.MaxRecordBytes

type replayFlags struct {
	common
	speedText string
	speed     float64 // 0 = max
	maxGap    time.Duration
	loop      int
	format    string
}

func runReplay(ctx context.Context, args []string, e env) error {
	var f replayFlags
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(e.stderr, replayUsage); fs.PrintDefaults() }
	f.register(fs, e.getenv)
	fs.StringVar(&f.speedText, "speed", "1", "time factor (60 = 60x faster than recorded) or max")
	fs.DurationVar(&f.maxGap, "max-gap", 5*time.Second, "longest wait between two records")
	fs.IntVar(&f.loop, "loop", 1, "replay the files N times (0 = until interrupted)")
	fs.StringVar(&f.format, "format", "auto", "input format: auto|combined|cloudfront|orders-csv (and the JSON formats); orders-agent-json reads the orders CSV and sends each line as Kinesis Agent CSVTOJSON output")
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		fs.Usage()
		return errors.New("replay: no input files")
	}
	if err := f.validate(); err != nil {
		return err
	}
	if f.speed, err = parseSpeed(f.speedText); err != nil {
		return err
	}
	// orders-agent-json reads the orders CSV and sends agent JSON.
	agent := f.format == formatAgentJSON
	if agent {
		f.format = string(records.FormatOrdersCSV)
	}
	format, err := records.ParseFormat(f.format)
	if err != nil {
		return err
	}
	if f.maxGap < 0 || f.loop < 0 {
		return errors.New("--max-gap and --loop must not be negative")
	}
	for _, name := range files {
		// Fail before sending anything when a file is missing.
		if _, err := os.Stat(name); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
	}

	p, err := startPipeline(ctx, &f.common, e, "replay")
	if err != nil {
		return err
	}
	r := &replayer{
		flags: &f, format: format, agent: agent, prod: p.prod, log: p.log,
		pace: pacer{speed: f.speed, maxGap: f.maxGap, now: e.now, sleep: e.sleep},
		rnd:  rand.Uint64,
	}
	p.extra = func() string { return fmt.Sprintf("lines=%d skipped=%d", r.lines.Load(), r.skipped.Load()) }
	srcErr := r.run(ctx, files)
	if err := p.finish(ctx, "replay"); err != nil {
		return err
	}
	if srcErr != nil && !errors.Is(srcErr, context.Canceled) {
		return srcErr
	}
	return nil
}

type replayer struct {
	flags  *replayFlags
	format records.Format
	agent  bool // send orders as Kinesis Agent JSON (formatAgentJSON)
	prod   *putter.Producer
	log    *zap.Logger
	pace   pacer
	rnd    func() uint64

	lines   atomic.Int64 // lines handed to the producer (sent or failed)
	skipped atomic.Int64 // header and empty lines
}

func (r *replayer) run(ctx context.Context, files []string) error {
	for pass := 0; r.flags.loop == 0 || pass < r.flags.loop; pass++ {
		for _, name := range files {
			if err := r.file(ctx, name); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *replayer) file(ctx context.Context, name string) error {
	fh, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	defer fh.Close()
	// A fresh decoder per file: CloudFront decoding keeps "#Fields" state.
	dec, err := records.NewDecoder(r.format)
	if err != nil {
		return err
	}
	// Pacing restarts per file: gaps across files or loops mean nothing.
	r.pace.reset()
	var rec records.Record
	err = readLines(fh, maxLine, func(line []byte, tooLong bool) error {
		if tooLong {
			// The producer rejects it and counts it as failed.
			return r.send(ctx, putter.Entry{PartitionKey: r.flags.keyMode.Key(traffic.Keys{}, r.rnd), Data: line})
		}
		if len(line) == 0 {
			r.skipped.Add(1)
			return nil
		}
		derr := dec.Decode(line, &rec)
		if errors.Is(derr, records.ErrHeader) {
			r.skipped.Add(1)
			r.checkFields(name, line)
			return nil
		}
		var keys traffic.Keys
		if derr == nil {
			// Decoded strings alias the line; clone what the batch keeps.
			keys = traffic.Keys{IP: strings.Clone(rec.ClientIP), Session: strings.Clone(rec.SessionID), Customer: strings.Clone(rec.CustomerID)}
			if err := r.pace.wait(ctx, rec.Time); err != nil {
				return err
			}
			if r.agent {
				// A line the agent could not convert goes as it is: the
				// consumer dead-letters it with the reason.
				if js, err := agentJSON(line); err == nil {
					line = js
				}
			}
		}
		// Undecodable lines are still sent: the consumer dead-letters them.
		return r.send(ctx, putter.Entry{PartitionKey: r.flags.keyMode.Key(keys, r.rnd), Data: line})
	})
	if err != nil {
		return fmt.Errorf("replay %s: %w", name, err)
	}
	return nil
}

func (r *replayer) send(ctx context.Context, e putter.Entry) error {
	err := r.prod.Add(ctx, e)
	if err == nil || errors.Is(err, putter.ErrInvalidEntry) {
		r.lines.Add(1)
	}
	if errors.Is(err, putter.ErrInvalidEntry) {
		return nil // counted as failed by the producer; go on
	}
	return err
}

// checkFields warns when a CloudFront #Fields header does not start like
// the standard order the consumer assumes.
func (r *replayer) checkFields(name string, line []byte) {
	rest, ok := strings.CutPrefix(string(line), "#Fields:")
	if !ok {
		return
	}
	fields := strings.Fields(rest)
	std := records.CloudFrontStandardFields
	if len(fields) <= len(std) && slices.Equal(fields, std[:len(fields)]) {
		return
	}
	r.log.Warn("CloudFront #Fields differ from the standard order; the consumer will misread these records",
		zap.String("file", name))
}

// readLines calls fn with every line of rd, without "\n" or "\r\n". A
// line over max bytes comes cut to max+1 bytes with tooLong set (so it
// still fails, visibly, as a record). line is a fresh slice fn may keep.
func readLines(rd io.Reader, max int, fn func(line []byte, tooLong bool) error) error {
	br := bufio.NewReaderSize(rd, 64<<10)
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if room := max + 2 - len(buf); room > 0 { // +2: room for "\r\n"
			buf = append(buf, chunk[:min(len(chunk), room)]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if len(buf) > 0 {
			line := trimEOL(buf)
			tooLong := len(line) > max
			if tooLong {
				line = line[:max+1]
			}
			if ferr := fn(line, tooLong); ferr != nil {
				return ferr
			}
		}
		if err != nil { // io.EOF
			return nil
		}
		buf = nil
	}
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// pacer spaces records by their event times divided by speed.
type pacer struct {
	speed  float64 // 0 = no pacing
	maxGap time.Duration
	now    func() time.Time
	sleep  func(context.Context, time.Duration) error

	started bool
	last    time.Time // latest event time so far
	due     time.Time // wall time the latest record was due
}

func (p *pacer) reset() { p.started = false }

// maxLag bounds how far sending may fall behind schedule and then catch
// up in a burst (a throttled stream, a slow disk).
const maxLag = time.Second

// wait sleeps until the record with event time t is due. Records without
// a time, or older than one already sent, are due at once.
func (p *pacer) wait(ctx context.Context, t time.Time) error {
	if p.speed == 0 || t.IsZero() {
		return nil
	}
	if !p.started {
		p.started, p.last, p.due = true, t, p.now()
		return nil
	}
	gap := t.Sub(p.last)
	if gap <= 0 {
		return nil
	}
	p.last = t
	d := min(time.Duration(float64(gap)/p.speed), p.maxGap)
	p.due = p.due.Add(d)
	now := p.now()
	if behind := now.Sub(p.due); behind > maxLag {
		p.due = now.Add(-maxLag)
	}
	if w := p.due.Sub(now); w > 0 {
		return p.sleep(ctx, w)
	}
	return nil
}
