package consumer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/internal/awsenv"
	"github.com/shardwatch/shardwatch/internal/config"
	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/records"
)

const replayUsage = `usage: consumer replay [--config FILE] [--batch N] [run settings] FILE...

Runs the configured processors over local files, offline (no Kinesis, no
leases), writing results to the configured sinks. Each file is one shard
"replay-<file name>" whose record positions are line numbers; the
processors' clock follows the records' event time, and the file ends as a
closed shard, so every window is final. Replaying a file again under the
same name counts nothing twice (the processors' cursors skip what they
counted); an interrupted replay resumes when run again.
`

// replayFlags are replay's own flags; every other flag is a run setting
// handed to config.Load.
type replayFlags struct {
	batch int
	files []string
	run   []string
}

// parseReplayArgs splits args into replay's flags, run settings and
// files. Run settings are all string flags (config.Load declares no
// boolean), so a "--name" without "=" always takes the next argument.
// Files may come before, between or after flags; "--" ends the flags.
func parseReplayArgs(args []string) (replayFlags, error) {
	f := replayFlags{batch: 500}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			f.files = append(f.files, args[i+1:]...)
			return f, nil
		case a == "-h" || a == "-help" || a == "--help":
			return f, errHelpRequested
		case len(a) > 1 && a[0] == '-':
			name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if !hasVal {
				if i+1 >= len(args) {
					return f, fmt.Errorf("replay: flag %s needs a value", a)
				}
				i++
				val = args[i]
			}
			if name == "batch" {
				n, err := strconv.Atoi(val)
				if err != nil || n < 1 || n > 10000 {
					return f, fmt.Errorf("replay: --batch: want 1 to 10000 lines, got %q", val)
				}
				f.batch = n
				continue
			}
			f.run = append(f.run, "--"+name, val)
		default:
			f.files = append(f.files, a)
		}
	}
	return f, nil
}

// errHelpRequested asks for the usage text.
var errHelpRequested = errors.New("help requested")

// runReplay is `consumer replay`.
func (c *cli) runReplay(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	rf, err := parseReplayArgs(args)
	if errors.Is(err, errHelpRequested) {
		fmt.Fprint(stderr, replayUsage, "\nrun settings, as for consumer run:\n")
		_, _ = config.Load([]string{"-h"}, getenv, stderr) // prints the flags; the error is flag.ErrHelp
		return nil
	}
	if err != nil {
		return err
	}
	if len(rf.files) == 0 {
		fmt.Fprint(stderr, replayUsage)
		return errors.New("replay: no input files")
	}
	shards, err := replayShards(rf.files)
	if err != nil {
		return err
	}
	cfg, err := loadReplayConfig(rf.run, getenv, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.LogFormat, cfg.LogLevel, stderr)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush of stderr

	app := processors.AppInfo{
		App: cfg.App, Stream: cfg.Stream, Namespace: cfg.Metrics.Namespace, AlarmTopicARN: cfg.Alarms.TopicARN,
		Tables:    processors.Tables{Results: cfg.Tables.Results, Counters: cfg.Tables.Counters, Alarms: cfg.Tables.Alarms, DeadLetter: cfg.Tables.DeadLetter},
		Retention: cfg.Retention,
	}
	named, err := buildProcessors(c.plugins, cfg, app)
	if err != nil {
		return err
	}
	if len(named) == 0 {
		return &config.FieldError{Field: "processors", Reason: "none configured: nothing to replay into"}
	}
	format, decOpts, err := cfg.Decoder()
	if err != nil {
		return err
	}
	awsCfg, err := awsenv.Load(ctx, cfg.Region)
	if err != nil {
		return err
	}
	ddb := dynamodb.NewFromConfig(awsCfg, awsenv.LocalDynamoDB(getenv))
	sinks, closeSinks, err := buildSinks(cfg, awsCfg, ddb, stdout, log)
	if err != nil {
		return err
	}
	defer closeSinks()

	r := &replayer{
		batch: rf.batch, format: format, log: log, clock: &eventClock{},
		stats: map[string]*replayStats{}, dropped: map[string]int{},
	}
	r.pcfg = processors.Config{
		Stream:     cfg.Stream,
		Processors: named,
		NewDecoder: func() (processors.Decoder, error) { return records.NewDecoderWith(format, decOpts) },
		Skip:       func(err error) bool { return errors.Is(err, records.ErrHeader) },
		Sinks:      sinks.pipeline,
		Store:      sinks.store,
		Clock:      r.clock,
		Logger:     log,
		Hooks: processors.Hooks{
			Decoded:      func(shard string, n int) { r.stats[shard].decoded += n },
			DeadLettered: func(shard, _ string, n int) { r.stats[shard].deadLettered += n },
			// A worker drops results a sink rejects for good (a processor
			// bug must not stall a shard); a replay is run by hand, so it
			// stops instead: usually a table is missing.
			Dropped: func(sink string, n int) { r.dropped[sink] += n },
		},
	}
	log.Info("replay", zap.String("app", cfg.App), zap.String("stream", cfg.Stream), zap.Int("files", len(shards)),
		zap.Int("processors", len(named)), zap.Int("batch", rf.batch))
	for _, s := range shards {
		start := time.Now()
		r.stats[s.id] = &replayStats{}
		if err := r.replayFile(ctx, cfg.Stream, s); err != nil {
			return fmt.Errorf("replay %s: %w", s.path, err)
		}
		st := r.stats[s.id]
		fmt.Fprintf(stderr, "replayed %s as shard %s: %d lines, %d records, %d dead-lettered, %d skipped, in %s\n",
			s.path, s.id, st.lines, st.decoded, st.deadLettered, st.lines-st.decoded-st.deadLettered,
			time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// loadReplayConfig is config.Load where the stream may be missing: a
// replay reads no stream, and processors only use its name as a metric
// dimension.
func loadReplayConfig(args []string, getenv func(string) string, stderr io.Writer) (config.Consumer, error) {
	cfg, err := config.Load(args, getenv, stderr)
	var fe *config.FieldError
	if errors.As(err, &fe) && fe.Field == "stream" {
		withStream := func(k string) string {
			if k == config.EnvName("stream") {
				return "replay"
			}
			return getenv(k)
		}
		return config.Load(args, withStream, stderr)
	}
	return cfg, err
}

type replayShard struct{ path, id string }

// replayShards names the shard of each file: "replay-" and the file name,
// which must be unique (a shard's cursor is keyed by its id).
func replayShards(files []string) ([]replayShard, error) {
	seen := map[string]string{}
	out := make([]replayShard, 0, len(files))
	for _, f := range files {
		id := "replay-" + filepath.Base(f)
		if prev, dup := seen[id]; dup {
			return nil, fmt.Errorf("replay: %s and %s would both be shard %s: rename one", prev, f, id)
		}
		seen[id] = f
		out = append(out, replayShard{path: f, id: id})
	}
	return out, nil
}

type replayStats struct{ lines, decoded, deadLettered int }

type replayer struct {
	batch  int
	format records.Format
	pcfg   processors.Config
	log    *zap.Logger
	clock  *eventClock
	stats  map[string]*replayStats
	// dropped counts results rejected permanently, per sink.
	dropped map[string]int
}

// ErrRejected is returned when a sink rejected results permanently.
var ErrRejected = errors.New("results rejected by a sink (does every table exist? see consumer setup)")

func (r *replayer) rejected() error {
	if len(r.dropped) == 0 {
		return nil
	}
	parts := make([]string, 0, len(r.dropped))
	for sink, n := range r.dropped {
		parts = append(parts, fmt.Sprintf("%d by %s", n, sink))
	}
	slices.Sort(parts)
	return fmt.Errorf("%w: %s; see the log", ErrRejected, strings.Join(parts, ", "))
}

// maxLine bounds one input line (Kinesis' record limit).
const maxLine = 1 << 20

// replayFile feeds one file through a pipeline as one shard from its first
// line to ShardEnded.
func (r *replayer) replayFile(ctx context.Context, stream string, s replayShard) (err error) {
	f, err := os.Open(s.path)
	if err != nil {
		return err
	}
	defer f.Close()
	// A second decoder reads the event times ahead of the pipeline, so the
	// clock can be set before each batch.
	times, err := records.NewDecoder(r.format)
	if err != nil {
		return err
	}
	r.clock.Set(time.Time{})
	pl, err := processors.Open(ctx, r.pcfg, processors.Shard{Stream: stream, ShardID: s.id, WorkerID: "replay"})
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if closed {
			return
		}
		// Interrupted or failed: hand over like a stopping worker, so a
		// rerun resumes from the partials instead of counting twice.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if cerr := pl.Close(cctx, processors.Shutdown); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()

	st := r.stats[s.id]
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var (
		batch  []processors.Raw
		buf    []byte
		rec    records.Record
		newest time.Time
		line   int
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		r.clock.Set(newest)
		err := pl.Process(ctx, batch)
		batch, buf = batch[:0], nil
		if err != nil {
			return err
		}
		return r.rejected()
	}
	for sc.Scan() {
		line++
		st.lines++
		// Each batch owns its bytes: the pipeline's records alias them.
		if buf == nil {
			buf = make([]byte, 0, r.batch*256)
		}
		start := len(buf)
		buf = append(buf, sc.Bytes()...)
		data := buf[start:len(buf):len(buf)]
		rec.Reset()
		if times.Decode(data, &rec) == nil && rec.Time.After(newest) {
			newest = rec.Time
		}
		batch = append(batch, processors.Raw{Data: data, Meta: records.Meta{
			ShardID: s.id, SequenceNumber: strconv.Itoa(line),
			// A record without its own time takes the newest event time
			// before it, so it lands in the current window.
			ArrivalTime: newest,
		}})
		if len(batch) == r.batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", line+1, err)
	}
	if err := flush(); err != nil {
		return err
	}
	closed = true
	if err := pl.Close(ctx, processors.ShardEnded); err != nil {
		return err
	}
	return r.rejected()
}

// eventClock is the replay's processors.Clock: the newest event time
// read so far, so windows close as the data moves, not as the wall clock
// does.
type eventClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *eventClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *eventClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}
