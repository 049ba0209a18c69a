// Package sns publishes notifications (alarms) to SNS topics with
// PublishBatch, up to 10 messages and 256 KiB per call, or one Publish per
// message. Messages carry String message attributes and a Subject
// sanitised to what SNS accepts. Entries SNS fails on its side are retried
// with backoff; entries it rejects as the sender's fault are reported.
package sns
