package sns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/smithy-go"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/pkg/results"
	"github.com/shardwatch/shardwatch/pkg/sinks"
	"github.com/shardwatch/shardwatch/pkg/sinks/retry"
)

// SNS limits.
const (
	// MaxBatch is PublishBatch's limit of entries per call.
	MaxBatch = 10
	// MaxPayload is the limit on one message (body, subject and
	// attributes) and on the sum of a PublishBatch call's messages.
	MaxPayload = 256 * 1024
	// MaxSubject is the longest Subject SNS accepts.
	MaxSubject = 100
	// MaxAttributes is the most message attributes one message may carry.
	MaxAttributes = 10
)

// ErrEntryFailed is wrapped by the failure of a batch entry SNS rejected.
var ErrEntryFailed = errors.New("sns rejected the entry")

// API is the SNS calls the Publisher makes.
type API interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
	PublishBatch(ctx context.Context, in *sns.PublishBatchInput, optFns ...func(*sns.Options)) (*sns.PublishBatchOutput, error)
}

// Options configures a Publisher.
type Options struct {
	// TopicARN is used for messages whose Topic is empty.
	TopicARN string
	// Sequential publishes one message per Publish call instead of
	// PublishBatch (for SNS-compatible servers without PublishBatch; goaws
	// v0.5.4 has it, though it refuses 10 entries: the publisher then
	// shrinks its batches by itself).
	Sequential bool
	// Retry governs retries of throttled calls and of entries SNS failed
	// on its side (zero value: retry.Policy's defaults, 8 attempts). A
	// retry after an ambiguous failure may publish a message twice: SNS
	// delivery is at-least-once anyway.
	Retry retry.Policy
	// Logger gets one debug line per retried call; default no-op.
	Logger *zap.Logger
}

// Stats are running totals since the publisher was built.
type Stats struct {
	Messages  uint64 // messages passed to Publish
	Published uint64 // messages SNS accepted
	Failed    uint64 // messages reported in a BatchError
	Calls     uint64 // Publish or PublishBatch calls
	Retries   uint64 // calls repeated after a transient failure
}

// Publisher implements processors.Publisher. It is safe for concurrent use.
type Publisher struct {
	api  API
	opts Options

	messages, published, failed, calls, retries atomic.Uint64
	// maxBatch starts at MaxBatch and shrinks if the server rejects a
	// batch as too large (goaws v0.5.4 refuses 10 entries, SNS allows 10).
	maxBatch atomic.Int64
}

// New returns a Publisher calling api.
func New(api API, opts Options) (*Publisher, error) {
	if api == nil {
		return nil, errors.New("sns publisher: nil client")
	}
	if err := opts.Retry.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	p := &Publisher{api: api, opts: opts}
	p.maxBatch.Store(MaxBatch)
	return p, nil
}

// Stats returns the running totals.
func (p *Publisher) Stats() Stats {
	return Stats{Messages: p.messages.Load(), Published: p.published.Load(), Failed: p.failed.Load(),
		Calls: p.calls.Load(), Retries: p.retries.Load()}
}

// entry is one validated message ready to send.
type entry struct {
	index   int
	topic   string
	subject string
	body    string
	attrs   map[string]types.MessageAttributeValue
	size    int
	// dedup and group are set on FIFO topics only.
	dedup, group *string
	// structure is "json" when body holds one message per protocol.
	structure *string
}

// humanProtocols get a message's short text; every other protocol gets
// its body. "default" covers protocols SNS adds later.
var humanProtocols = []string{"sms", "email"}

// perProtocol returns the MessageStructure json body of m: Text for SMS
// and email, Body for SQS, Lambda, HTTP(S), Firehose, applications and
// the default.
func perProtocol(m *results.Message) (string, error) {
	v := map[string]string{"default": string(m.Body)}
	for _, proto := range []string{"sqs", "lambda", "http", "https", "email-json", "firehose", "application"} {
		v[proto] = string(m.Body)
	}
	for _, proto := range humanProtocols {
		v[proto] = m.Text
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// IsFIFO reports whether topicARN names an SNS FIFO topic: FIFO topic
// names must end in ".fifo", so the ARN says which kind a topic is.
func IsFIFO(topicARN string) bool { return strings.HasSuffix(topicARN, ".fifo") }

// Publish sends msgs, in order per topic, and returns when SNS accepted
// all of them, or with an error wrapping a *sinks.BatchError listing those
// it did not.
func (p *Publisher) Publish(ctx context.Context, msgs []results.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	p.messages.Add(uint64(len(msgs)))
	var failed []sinks.Failure
	var topics []string
	byTopic := map[string][]entry{}
	for i := range msgs {
		e, err := p.entry(i, &msgs[i])
		if err != nil {
			failed = append(failed, sinks.Failure{Index: i, Key: msgs[i].Topic, Err: err})
			continue
		}
		if _, ok := byTopic[e.topic]; !ok {
			topics = append(topics, e.topic)
		}
		byTopic[e.topic] = append(byTopic[e.topic], e)
	}
	for _, topic := range topics {
		es := byTopic[topic]
		if p.opts.Sequential {
			for _, e := range es {
				failed = append(failed, p.publishOne(ctx, e)...)
			}
			continue
		}
		for len(es) > 0 {
			n, size, limit := 0, 0, int(p.maxBatch.Load())
			for n < len(es) && n < limit && size+es[n].size <= MaxPayload {
				size += es[n].size
				n++
			}
			f, tooMany := p.publishBatch(ctx, topic, es[:n])
			if tooMany && n > 1 {
				p.maxBatch.CompareAndSwap(int64(limit), int64(n-1))
				continue // nothing of this chunk was published: resend smaller
			}
			failed = append(failed, f...)
			es = es[n:]
		}
	}
	p.failed.Add(uint64(len(failed)))
	return sinks.NewBatchError("sns publish", len(msgs), failed)
}

func (p *Publisher) entry(i int, m *results.Message) (entry, error) {
	e := entry{index: i, topic: m.Topic, subject: SanitizeSubject(m.Subject), body: string(m.Body)}
	if e.topic == "" {
		e.topic = p.opts.TopicARN
	}
	switch {
	case e.topic == "":
		return e, fmt.Errorf("%w: message without topic and no default topic ARN", sinks.ErrInvalidInput)
	case len(m.Body) == 0:
		return e, fmt.Errorf("%w: empty message body", sinks.ErrInvalidInput)
	case !utf8.Valid(m.Body):
		return e, fmt.Errorf("%w: message body is not UTF-8", sinks.ErrInvalidInput)
	}
	if m.Text != "" {
		if !utf8.ValidString(m.Text) {
			return e, fmt.Errorf("%w: message text is not UTF-8", sinks.ErrInvalidInput)
		}
		body, err := perProtocol(m)
		if err != nil {
			return e, fmt.Errorf("%w: %v", sinks.ErrInvalidInput, err)
		}
		e.body, e.structure = body, aws.String("json")
	}
	if IsFIFO(e.topic) {
		// SNS drops a FIFO message whose MessageDeduplicationId it saw in
		// the last 5 minutes, and requires a MessageGroupId. Standard
		// topics get neither: SNS would reject them there.
		if m.DedupID == "" || m.GroupID == "" {
			return e, fmt.Errorf("%w: message to FIFO topic %s without a de-duplication and group id", sinks.ErrInvalidInput, e.topic)
		}
		if len(m.DedupID) > 128 || len(m.GroupID) > 128 {
			return e, fmt.Errorf("%w: FIFO de-duplication or group id longer than 128 characters", sinks.ErrInvalidInput)
		}
		e.dedup, e.group = aws.String(m.DedupID), aws.String(m.GroupID)
	}
	e.size = len(e.body) + len(e.subject)
	for name, v := range m.Attributes {
		if v == "" {
			continue // SNS rejects empty String values; empty means absent
		}
		if err := checkAttrName(name); err != nil {
			return e, err
		}
		if e.attrs == nil {
			e.attrs = make(map[string]types.MessageAttributeValue, len(m.Attributes))
		}
		e.attrs[name] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		e.size += len(name) + len("String") + len(v)
	}
	if len(e.attrs) > MaxAttributes {
		return e, fmt.Errorf("%w: %d message attributes, at most %d", sinks.ErrInvalidInput, len(e.attrs), MaxAttributes)
	}
	if e.size > MaxPayload {
		return e, fmt.Errorf("%w: message of %d bytes exceeds %d", sinks.ErrInvalidInput, e.size, MaxPayload)
	}
	return e, nil
}

// checkAttrName applies SNS's message attribute name rules.
func checkAttrName(name string) error {
	bad := name == "" || len(name) > 256 || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") ||
		strings.Contains(name, "..") || strings.HasPrefix(strings.ToLower(name), "aws.") ||
		strings.HasPrefix(strings.ToLower(name), "amazon.")
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("%w: message attribute name %q", sinks.ErrInvalidInput, name)
	}
	return nil
}

func (p *Publisher) publishOne(ctx context.Context, e entry) []sinks.Failure {
	in := &sns.PublishInput{TopicArn: aws.String(e.topic), Message: aws.String(e.body), MessageAttributes: e.attrs,
		MessageDeduplicationId: e.dedup, MessageGroupId: e.group, MessageStructure: e.structure}
	if e.subject != "" {
		in.Subject = aws.String(e.subject)
	}
	first := true
	err := p.opts.Retry.Do(ctx, sinks.IsRetryable, func(ctx context.Context) error {
		if !first {
			p.retries.Add(1)
		}
		first = false
		p.calls.Add(1)
		_, err := p.api.Publish(ctx, in)
		return err
	})
	if err != nil {
		return []sinks.Failure{{Index: e.index, Key: e.topic, Err: err}}
	}
	p.published.Add(1)
	return nil
}

// publishBatch publishes es with PublishBatch, retrying what SNS failed on
// its side. tooMany reports that the server refused the number of entries.
func (p *Publisher) publishBatch(ctx context.Context, topic string, es []entry) (_ []sinks.Failure, tooMany bool) {
	pending := make(map[string]entry, len(es))
	var failed []sinks.Failure
	var lastErr error
	for attempt := 1; ; attempt++ {
		if attempt == 1 {
			for i, e := range es {
				pending["m"+strconv.Itoa(i)] = e
			}
		}
		if err := ctx.Err(); err != nil {
			return append(failed, failPending(pending, err, lastErr)...), false
		}
		in := &sns.PublishBatchInput{TopicArn: aws.String(topic)}
		for i, e := range es {
			id := "m" + strconv.Itoa(i)
			if _, ok := pending[id]; !ok {
				continue
			}
			be := types.PublishBatchRequestEntry{Id: aws.String(id), Message: aws.String(e.body), MessageAttributes: e.attrs,
				MessageDeduplicationId: e.dedup, MessageGroupId: e.group, MessageStructure: e.structure}
			if e.subject != "" {
				be.Subject = aws.String(e.subject)
			}
			in.PublishBatchRequestEntries = append(in.PublishBatchRequestEntries, be)
		}
		p.calls.Add(1)
		out, err := p.api.PublishBatch(ctx, in)
		if err != nil {
			if sinks.Classify(err) != sinks.Retryable {
				var apiErr smithy.APIError
				if errors.As(err, &apiErr) && strings.HasSuffix(apiErr.ErrorCode(), "TooManyEntriesInBatchRequest") && len(pending) == len(es) {
					return nil, true
				}
				return append(failed, failPending(pending, err, nil)...), false
			}
			lastErr = err
		} else {
			for _, s := range out.Successful {
				if _, ok := pending[aws.ToString(s.Id)]; ok {
					delete(pending, aws.ToString(s.Id))
					p.published.Add(1)
				}
			}
			for _, f := range out.Failed {
				id := aws.ToString(f.Id)
				e, ok := pending[id]
				if !ok {
					continue
				}
				ferr := fmt.Errorf("%w: %s: %s", ErrEntryFailed, aws.ToString(f.Code), aws.ToString(f.Message))
				// SenderFault means the entry itself is wrong; otherwise SNS
				// failed on its side and the entry is worth retrying.
				if f.SenderFault {
					delete(pending, id)
					failed = append(failed, sinks.Failure{Index: e.index, Key: e.topic, Err: ferr})
				} else {
					lastErr = ferr
				}
			}
			if len(pending) == 0 {
				return failed, false
			}
			if lastErr == nil {
				// Entries neither successful nor failed: a broken server.
				lastErr = fmt.Errorf("%w: no result for %d entries", ErrEntryFailed, len(pending))
			}
		}
		if !p.opts.Retry.More(attempt) {
			return append(failed, failPending(pending, fmt.Errorf("%w after %d attempts: %w", retry.ErrExhausted, attempt, lastErr), nil)...), false
		}
		p.opts.Logger.Debug("sns publish batch retry", zap.String("sink", "sns"), zap.Int("attempt", attempt),
			zap.Int("pending", len(pending)), zap.Error(lastErr))
		if err := p.opts.Retry.Wait(ctx, attempt); err != nil {
			return append(failed, failPending(pending, err, lastErr)...), false
		}
		p.retries.Add(1)
	}
}

func failPending(pending map[string]entry, err, last error) []sinks.Failure {
	if last != nil && !errors.Is(err, last) {
		err = fmt.Errorf("%w (last error: %w)", err, last)
	}
	out := make([]sinks.Failure, 0, len(pending))
	for _, e := range pending {
		out = append(out, sinks.Failure{Index: e.index, Key: e.topic, Err: err})
	}
	return out
}

// SanitizeSubject makes s a valid SNS Subject: printable ASCII only
// (control characters and line breaks become spaces, other characters
// '?'), runs of spaces collapsed, trimmed, at most 100 characters.
func SanitizeSubject(s string) string {
	var b strings.Builder
	b.Grow(min(len(s), MaxSubject))
	space := false
	for _, r := range s {
		if b.Len() >= MaxSubject {
			break
		}
		switch {
		case r == ' ' || r < 0x20 || r == 0x7f || r == utf8.RuneError:
			space = b.Len() > 0
			continue
		case r > 0x7e:
			r = '?'
		}
		if space {
			if b.Len()+1 >= MaxSubject {
				break
			}
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}
