package sns

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/pkg/results"
	"github.com/shardwatch/shardwatch/pkg/sinks/internal/sinktest"
)

// envelope is the SNS notification JSON an SQS subscriber receives when
// RawMessageDelivery is off.
type envelope struct {
	Type              string
	TopicArn          string
	Subject           string
	Message           string
	MessageAttributes map[string]attr
}

// attr is a message attribute in the envelope. Real SNS writes
// {"Type","Value"}; goaws v0.5.4 writes {"DataType","StringValue"}.
type attr struct {
	Type, Value           string
	DataType, StringValue string `json:",omitempty"`
}

func (a attr) normal() attr {
	if a.Type == "" && a.Value == "" {
		return attr{Type: a.DataType, Value: a.StringValue}
	}
	return attr{Type: a.Type, Value: a.Value}
}

// localTopic creates a topic and an SQS queue subscribed to it on goaws,
// removed when the test ends.
func localTopic(t *testing.T) (*sns.Client, *sqs.Client, string, string) {
	t.Helper()
	snsEP, sqsEP := sinktest.Endpoint(t, "SNS"), sinktest.Endpoint(t, "SQS")
	cfg := sinktest.Config(t)
	sc := sns.NewFromConfig(cfg, func(o *sns.Options) { o.BaseEndpoint = aws.String(snsEP) })
	qc := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(sqsEP) })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	name := sinktest.Name("sinks-alarms")
	topic, err := sc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name)})
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	queue, err := qc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := sc.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: topic.TopicArn}); err != nil {
			t.Errorf("delete topic: %v", err)
		}
		if _, err := qc.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: queue.QueueUrl}); err != nil {
			t.Errorf("delete queue: %v", err)
		}
	})
	attrs, err := qc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: queue.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatalf("queue arn: %v", err)
	}
	if _, err := sc.Subscribe(ctx, &sns.SubscribeInput{
		TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(attrs.Attributes["QueueArn"]),
	}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	return sc, qc, aws.ToString(topic.TopicArn), aws.ToString(queue.QueueUrl)
}

// receive reads n messages from the queue, polling until the deadline.
func receive(t *testing.T, qc *sqs.Client, url string, n int) []envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out []envelope
	for len(out) < n {
		res, err := qc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
		})
		if err != nil {
			t.Fatalf("receive after %d of %d messages: %v", len(out), n, err)
		}
		for _, m := range res.Messages {
			var e envelope
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &e); err != nil {
				t.Fatalf("message body is not an SNS envelope: %v: %q", err, aws.ToString(m.Body))
			}
			for k, a := range e.MessageAttributes {
				e.MessageAttributes[k] = a.normal()
			}
			out = append(out, e)
			if _, err := qc.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatalf("delete message: %v", err)
			}
		}
	}
	return out
}

func TestIntegrationPublishToSQS(t *testing.T) {
	for _, seq := range []bool{false, true} {
		t.Run(fmt.Sprintf("sequential=%v", seq), func(t *testing.T) {
			sc, qc, topic, queue := localTopic(t)
			p, err := New(sc, Options{TopicARN: topic, Sequential: seq})
			if err != nil {
				t.Fatal(err)
			}
			var in []results.Message
			for i := range 12 { // two PublishBatch calls
				in = append(in, results.Message{
					Subject:    fmt.Sprintf("Order flood\n#%02d", i),
					Body:       []byte(fmt.Sprintf(`{"alarm":"order-flood","n":%d}`, i)),
					Attributes: map[string]string{"alarm": "order-flood", "period": "2026-11-22T09:41", "empty": ""},
				})
			}
			if err := p.Publish(t.Context(), in); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			got := receive(t, qc, queue, len(in))
			// Sort by subject, which carries the zero-padded number.
			sort.Slice(got, func(i, j int) bool { return got[i].Subject < got[j].Subject })
			for i, e := range got {
				want := envelope{
					Type: "Notification", TopicArn: topic,
					Subject: fmt.Sprintf("Order flood #%02d", i),
					Message: fmt.Sprintf(`{"alarm":"order-flood","n":%d}`, i),
					MessageAttributes: map[string]attr{
						"alarm":  {Type: "String", Value: "order-flood"},
						"period": {Type: "String", Value: "2026-11-22T09:41"},
					},
				}
				if d := cmp.Diff(want, e); d != "" {
					t.Errorf("message %d (-want +got):\n%s", i, d)
				}
			}
			// goaws refuses a batch of 10 (real SNS takes 10): the first call
			// is refused, then batches of 9 and 3.
			wantCalls := uint64(3)
			if seq {
				wantCalls = 12
			}
			if st := p.Stats(); st.Published != 12 || st.Calls != wantCalls {
				t.Errorf("stats %+v: want 12 published in %d calls", st, wantCalls)
			}
		})
	}
}
