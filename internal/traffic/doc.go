// Package traffic makes the synthetic traffic of the producer, the demo,
// tests and benchmarks: clickstream hits and e-commerce orders as the JSON
// payloads pkg/records decodes (formats clickstream and orders-json).
//
// Generator is deterministic: the same Config (Seed included) yields the
// same sequence of events and payloads; only timestamps depend on
// Config.Start. Events carry a schedule offset (Poisson arrivals at
// Config.Rate plus optional order-flood bursts) that the caller paces
// against a clock; timestamps are Start plus that offset, so they follow
// the clock when Start is "now" and are reproducible when Start is fixed.
//
// Hit and Order encode payloads; KeyMode picks the Kinesis partition key
// from a record's fields. The HTTP collector reuses both.
package traffic
