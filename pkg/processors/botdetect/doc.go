// Package botdetect flags bots in web traffic: requests whose User-Agent
// is a crawler, and client IPs that behave like one within a tumbling
// event-time window (request rate, /robots.txt fetches, many distinct
// paths without a referer).
//
// User-Agents are classified by a Detector shared by all shards of a
// worker: allow and deny patterns, then crawlerdetect's patterns behind an
// LRU cache. On a cache miss an exact re-implementation (useragent.CrawlerMatcher) of crawlerdetect's
// matching (same verdict, proven on the shared data and by fuzzing) costs
// a few microseconds instead of the library's 90-300.
//
// Per window and shard the processor writes partial items holding every
// IP's counters (chunked to stay under DynamoDB's item limit); a new lease
// owner restores them and skips records they already cover. When a window
// closes the shard writes its final partial and merges all shards'
// partials into the window's global item, re-evaluating the behaviour
// signals on the summed counters (Merge, also used by read-side tools).
//
// Not yet on the window runner (pkg/processors/windowed): one window's
// state (up to max_ips IPs) spans several chunk items of which only the
// changed ones are rewritten on a flush, the merge reads the raw chunks,
// and every flush also emits per-second BotShare metrics of the records
// accepted; the runner writes one partial item per window and shard.
package botdetect
