// Package topn is the top-N talkers processor: per tumbling event-time
// window it finds the N client IPs with the most requests and with the
// most response bytes, and the bytes per host (virtual host or CloudFront
// edge), globally across the shards of the stream.
//
// Each shard counts exactly (up to max_keys IPs per window) and writes a
// partial item per (window, shard) on every Flush: the union of its top M
// IPs by requests and by bytes, the most an unlisted IP can have (its
// error bound) and the covered position. The shard that finalises a
// window merges every shard's partial into the global item with Merge,
// which gives each listed count an error bound: 0 whenever every shard
// listed all its IPs, which is always the case when producers use the
// client IP as partition key and a shard sees at most M IPs per window.
package topn
