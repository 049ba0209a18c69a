package e2e

import (
	"errors"
	"fmt"
	"time"
)

// Config is one `make bench` end-to-end session.
type Config struct {
	// ConsumerBin and BaselineBin are the built worker binaries.
	ConsumerBin, BaselineBin string
	// DataDir is ../shared/data (the Zaker log and the orders CSV).
	DataDir string
	// OutDir receives the per-run files (configs, audit logs, worker
	// logs), profiles and results.json.
	OutDir string
	// Records is the number of records of each phase (live and max).
	Records int
	// Rate is the live phase's put rate in records per second.
	Rate int
	// Shards of the stream (the RSS target is for a worker with 8).
	Shards int
	// Workers lists the fleet sizes to run, e.g. [1 2].
	Workers []int
	// Repeat runs every (consumer, fleet size) this many times.
	Repeat int
	// Poll is both consumers' poll interval (the alarm target assumes
	// 250 ms).
	Poll time.Duration
	// MaxRecords is both consumers' GetRecords limit (the consumer's
	// max_records; default 10,000 as its config).
	MaxRecords int
	// FlushInterval is the consumer's flush_interval (0: its default,
	// 5 s since issue 16).
	FlushInterval time.Duration
	// BurstEvery and BurstOrders shape the order bursts of the live phase
	// that make the consumer raise alarms (orderflood configured with
	// threshold AlarmThreshold in a 2 s window, 5 s suppression).
	BurstEvery     time.Duration
	BurstOrders    int
	AlarmThreshold int
	// Profile takes a CPU profile of the live phase and a heap profile at
	// the end of the first consumer run (needs the consumer's pprof: true).
	Profile bool
	// ProfileSeconds is the CPU profile's length (at most 25 s).
	ProfileSeconds int
	// Settle is how long to wait for the last records after the producer
	// finished before a phase is declared incomplete.
	Settle time.Duration
}

// Defaults returns the `make bench` defaults.
func Defaults() Config {
	return Config{
		Records: 200_000, Rate: 5000, Shards: 8, Workers: []int{1, 2}, Repeat: 2,
		Poll: 250 * time.Millisecond, MaxRecords: 10000, BurstEvery: 6 * time.Second, BurstOrders: 40, AlarmThreshold: 30,
		Profile: true, ProfileSeconds: 20, Settle: 2 * time.Minute,
	}
}

// Validate names the first unusable field.
func (c Config) Validate() error {
	switch {
	case c.ConsumerBin == "" || c.BaselineBin == "":
		return errors.New("e2e: consumer and baseline binaries are required")
	case c.DataDir == "" || c.OutDir == "":
		return errors.New("e2e: data and output directories are required")
	case c.Records < 1000:
		return fmt.Errorf("e2e: records %d: want >= 1000", c.Records)
	case c.Rate < 100:
		return fmt.Errorf("e2e: rate %d: want >= 100 records/s", c.Rate)
	case c.MaxRecords < 1 || c.MaxRecords > 10000:
		return fmt.Errorf("e2e: max records %d: want 1-10000", c.MaxRecords)
	case c.Shards < 1 || c.Shards > 64:
		return fmt.Errorf("e2e: shards %d: want 1-64", c.Shards)
	case len(c.Workers) == 0:
		return errors.New("e2e: no fleet size")
	case c.Repeat < 1:
		return errors.New("e2e: repeat must be >= 1")
	case c.BurstOrders <= c.AlarmThreshold:
		return errors.New("e2e: a burst must exceed the alarm threshold")
	case c.BurstEvery < 6*time.Second:
		// Two bursts must fall in different 5 s suppression periods and
		// the 2 s window must have emptied in between.
		return errors.New("e2e: bursts must be at least 6s apart")
	case c.ProfileSeconds < 1 || c.ProfileSeconds > 25:
		return errors.New("e2e: profile seconds must be 1-25 (the ops server's write timeout)")
	}
	for _, w := range c.Workers {
		if w < 1 || w > c.Shards {
			return fmt.Errorf("e2e: fleet size %d: want 1-%d", w, c.Shards)
		}
	}
	return nil
}
