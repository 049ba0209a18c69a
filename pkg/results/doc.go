// Package results holds the value types processors emit and sinks write:
// Item, Message, Datum (with Dim) and DeadLetter. It is a leaf: it imports
// no other shardwatch package, so sinks do not depend on the plugin API
// (pkg/processors), which re-exports these types under the same names.
package results
