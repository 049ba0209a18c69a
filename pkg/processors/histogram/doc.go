// Package histogram is the response-size histogram processor: per tumbling
// event-time window and host (virtual host or CloudFront edge) it counts
// responses per size bucket (configurable upper bounds, by default 0,
// 1 KiB, 10 KiB, 100 KiB, 1 MiB, 10 MiB and above), and it keeps the
// largest responses of the window by path.
//
// Histograms are global across the shards of the stream by summing
// per-shard partial items, with the same partial/cursor/restore design as
// the other windowed processors (see package window): a new lease owner
// restores open windows and skips records its predecessor already
// counted, so the sums stay exact across failover. The largest responses
// merge exactly too: a path's global maximum is its maximum on some shard,
// and a path in the global top K is in that shard's top K.
package histogram
