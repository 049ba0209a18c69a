// Package jsonl writes sink output as JSON lines to a local file: dead
// letters (one record per line, payload base64) and result items (DynamoDB
// attributes as plain JSON), for local runs and demos without DynamoDB.
//
// A call returns only after its lines are written and the file is
// fsync'd, since the pipeline checkpoints right after. A failed write is
// cut back off the file, so it never ends in half a line.
package jsonl
