// Package records holds the one decoded model every processor sees
// (Record) and the decoders that fill it from Kinesis record payloads.
//
// A Record is a flat struct shared by web hits and orders; Kind says
// which fields are meaningful and Meta locates the record in the stream
// (the consumer fills Meta, decoders leave it alone). Decoding is the hot
// path of the fleet, so a Decoder fills a caller-owned Record with one
// allocation: every string field of a record slices a single string made
// from the payload (or, when some field needs unescaping, from a scratch
// copy of the rewritten fields). With AliasPayload(true) (PayloadAliaser,
// which the consumer's pipeline turns on) the strings slice the payload
// itself and a record that needs no unescaping costs no allocation.
// Timestamps are parsed by hand, with no time.Parse and no regexp anywhere.
//
// Formats (Format, ParseFormat, NewDecoder):
//
//	name         reads                                   example
//	combined     Apache/nginx combined or common log     1.2.3.4 - - [22/Jan/2019:03:56:14 +0330] "GET / HTTP/1.1" 200 512 "-" "curl/8.0"
//	cloudfront   CloudFront standard log (W3C, tabs)     2018-11-07<TAB>00:12:08<TAB>FRA53<TAB>376<TAB>3.120.138.129<TAB>GET<TAB>...
//	clickstream  JSON hit                                {"ip":"1.2.3.4","path":"/","event":"pageview","timestamp":1700000000000}
//	orders-csv   Online Retail CSV row                   536365,85123A,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom
//	orders-json  Online Retail row as JSON               {"invoice_no":"536365","quantity":6,"unit_price":3.39,...}
//	json         generic JSON event (JSONFields)         {"iotName":"DemoSensor","iotValue":14,"ts":1700000000000}
//	auto         sniffs each record (see AutoDecoder)
//
// Decoders are per shard and not safe for concurrent use: CloudFront
// decoding is stateful ("#Fields" headers set the column order) and all
// of them keep small caches. Errors: ErrHeader for header records, which
// the pipeline skips without dead-lettering; otherwise a *DecodeError
// matching one of ErrEmpty, ErrTruncated, ErrMalformed, ErrOversize
// (payload over MaxRecordBytes) or ErrInvalidUTF8 with errors.Is.
package records
