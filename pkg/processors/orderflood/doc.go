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
// Alarms (exactly one SNS message per period is the goal): the raiser
// (1) records a pending marker for its shard, (2) elects itself with a
// conditional put of the alarm-history item (published=false), (3)
// publishes through the emitter and, on its next flush, when the message
// is known to be out, marks the item published. A later owner of the
// shard resumes every pending marker: it publishes alarms its shard won
// but never confirmed. A crash between the publish and that confirmation
// therefore publishes twice (at-least-once); every other crash point
// publishes once. Shutdown claims but does not publish (the next owner
// does); an alarm raised by a shard's very last flush (shard ended) is
// published but stays published=false.
//
// Not on the window runner (pkg/processors/windowed): the alarm is a
// sliding count evaluated per record with fleet-wide de-duplication
// (a conditional put per suppression period, then SNS), not a per-window
// aggregate merged from shard partials.
package orderflood
