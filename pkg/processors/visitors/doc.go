// Package visitors is the "who are the visitors" processor: per window,
// fleet-wide counts of hits by User-Agent class (human, bot, library,
// unknown), browser family, OS family and device class, as the CloudFront
// log-analysis solution derives browserfamily, osfamily and isbot from
// every User-Agent. Classification is pkg/useragent's, behind its LRU
// cache. It runs on the window runner (pkg/processors/windowed).
package visitors
