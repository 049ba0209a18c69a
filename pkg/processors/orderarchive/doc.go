// Package orderarchive is the order archive processor: it writes every
// order line to a DynamoDB table keyed for look-ups by customer (partition
// key: the customer id, or "_guest"), with a sort key that starts with the
// invoice date, so "a customer's recent orders" is one Query read
// backwards.
//
// Writes go through the Emitter (the pipeline's batched, retried item
// sink) as whole-item overwrites keyed by the order line's content, never
// by its stream position: a replay after a failover, or the same file
// produced twice, rewrites the same items instead of adding duplicates.
// Identical lines of one invoice (they exist in real data) are told apart
// by their occurrence number within the invoice, counted per shard in
// arrival order; the count of the invoice in progress is saved at every
// Flush, so a new lease owner continues it instead of starting over.
package orderarchive
