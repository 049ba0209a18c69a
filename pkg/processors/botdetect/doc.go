// Package botdetect flags bots in web traffic: requests whose User-Agent
// is a crawler, and client IPs that behave like one within a tumbling
// event-time window (request rate, /robots.txt fetches, many distinct
// paths without a referer).
//
// User-Agents are classified by a Detector shared by all shards of a
// worker: pkg/useragent's classifier (bot, human, library, unknown, with
// a reason) behind its LRU cache. Class bot flags; libraries (HTTP
// clients, SDKs, feed readers, unfurlers) are counted as their own class
// (library_requests, LibraryRequests) and never flagged for their UA.
//
// Each shard also keeps a bounded behaviour profile per client IP and per
// session id (profile.go): exponentially decayed counters over a short
// (1 h) and a long (24 h) horizon, inter-request gap regularity and path
// entropy, scored on every request; a flagging verdict is recorded in the
// IP's state of the window the request falls in, so a client flagged in
// hour 2 is reported for hour 2. Profiles are written every
// profile.persist_every (not per batch) with the position they cover; a
// new owner restores them and feeds them the replayed records after it.
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
