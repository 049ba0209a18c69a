// Package orderflood raises an alarm when the orders of the whole stream
// (or of one customer or client IP) in a sliding event-time window reach
// a threshold, at most once per suppression period across the fleet.
//
// Counting: each shard keeps per-second counts in one-second windows and
// writes them as per-(second, shard) partial items, grouped by minute so
// one Query returns a window's seconds from every shard. A flush
// evaluates the sliding windows touched by the seconds that changed: the
// other shards' durable partials plus this shard's in-memory counts.
//
// Races: two shards that flush at the same time may each miss the
// other's not-yet-durable counts. Every flush therefore re-checks the
// previous flush's seconds once more; by then this shard's own write is
// durable, so whichever shard's write completed last sees every count.
//
// Alarms: a conditional put of the alarm-history item (state claimed)
// elects one raiser per (alarm, period) fleet-wide. The raiser moves the
// claim to publishing, publishes synchronously through Env.Publisher and
// records it published at once; each step is conditional on the lease's
// claim token, so a lease that lost the claim publishes nothing. A later
// owner of the shard resumes pending alarms: a claimed one is published
// once; one found in publishing may have gone out and is published again
// with the same de-duplication id, which an SNS FIFO topic drops and a
// standard topic's subscribers can drop (see README.md). Shutdown claims
// but does not publish (the next owner does).
//
// Not on the window runner (pkg/processors/windowed): the alarm is a
// sliding count evaluated per record with fleet-wide de-duplication
// (a conditional put per suppression period, then SNS), not a per-window
// aggregate merged from shard partials.
package orderflood
