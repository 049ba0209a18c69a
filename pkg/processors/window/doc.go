// Package window is the event-time windowing every shardwatch processor
// shares, so that lateness, closing and failover restore behave the same
// in all of them (the framework owns the window, as in telegraf's
// running aggregator; plugins only keep per-window state).
//
// A Tracker assigns records to tumbling windows of Config.Size on their
// event time. The shard's watermark is the largest event time seen. A
// window [start, end) closes when the watermark reaches end+Grace, or,
// when the shard has been idle (no records) for Idle on the injected
// clock, when the clock reaches end+Grace+Idle; the idle condition keeps a
// replay of old data, whose event times are far behind the clock, from
// closing every window as soon as it opens. A record for a window that has
// closed is late: it is counted, never mixed in.
//
// Exactly-once aggregates across failover: processors write one partial
// item per (result, window, shard) carrying the shard's running totals and
// the Position of the newest record they cover, plus one Cursor item per
// (result, shard) listing the windows whose partials matter. A new lease
// owner calls Load, restores each window with Tracker.Restore and the
// tracker then reports records at or below the covered positions as
// Replayed, so re-delivered records are not counted twice.
package window
