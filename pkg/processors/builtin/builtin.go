package builtin

import (
	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/anomaly"
	"github.com/shardwatch/shardwatch/pkg/processors/botdetect"
	"github.com/shardwatch/shardwatch/pkg/processors/cloudfront"
	"github.com/shardwatch/shardwatch/pkg/processors/counters"
	"github.com/shardwatch/shardwatch/pkg/processors/histogram"
	"github.com/shardwatch/shardwatch/pkg/processors/hrmetrics"
	"github.com/shardwatch/shardwatch/pkg/processors/orderarchive"
	"github.com/shardwatch/shardwatch/pkg/processors/orderflood"
	"github.com/shardwatch/shardwatch/pkg/processors/topn"
	"github.com/shardwatch/shardwatch/pkg/processors/visitors"
)

// Plugins returns every built-in processor plugin, in a fixed order.
func Plugins() []processors.Plugin {
	return []processors.Plugin{
		anomaly.Plugin(),
		botdetect.Plugin(),
		cloudfront.BotsPlugin(),
		cloudfront.BytesPlugin(),
		cloudfront.CachePlugin(),
		counters.Plugin(),
		histogram.Plugin(),
		hrmetrics.Plugin(),
		orderarchive.Plugin(),
		orderflood.Plugin(),
		topn.Plugin(),
		visitors.Plugin(),
	}
}
