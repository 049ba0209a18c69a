// Package windowed is the window runner: it turns a per-window Aggregate
// (new state, add a record, merge two states, encode and decode a state,
// produce the result) into a complete processors.Plugin, and owns
// everything else a fleet-wide windowed result needs.
//
// The runner owns, so that every plugin on it gets them right:
//
//   - event-time tumbling windows (one or several sizes), the grace
//     period, closing on an idle shard, and late-record counting (the
//     LateRecords metric, dimensions Stream and Processor);
//   - the items: a partial per (window, shard) rewritten while the window
//     changes, final once it closes, and a cursor per shard;
//   - exactly-once restore: a new lease owner restores open windows from
//     the partials and skips records at or below the position they cover;
//   - the global merge: the shard that finalises a window merges every
//     shard's partial (Decode, Merge in shard order, Result) and writes it
//     again until all partials are final and the result stable, retrying a
//     failed read up to 10 times;
//   - the lease lifecycle: lease lost discards state and emits nothing,
//     shutdown writes partials for the next owner, shard end closes every
//     window.
//
// A plugin never sees the clock, the store, DynamoDB types or item keys:
// it names its values in Fields. Define builds the Plugin (strict config
// decoding, validation, instance names, key claims); processortest.Run
// checks the guarantees. docs/writing-a-processor.md walks through one.
package windowed
