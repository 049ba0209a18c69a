package sns

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/shardwatch/shardwatch/pkg/results"
	"github.com/shardwatch/shardwatch/pkg/sinks"
	"github.com/shardwatch/shardwatch/pkg/sinks/retry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"))
}

// fakeSNS records published bodies; hook may fail a call or entries.
type fakeSNS struct {
	mu        sync.Mutex
	calls     int
	batchLens []int
	published []string // topic + " " + body
	hook      func(n int, e types.PublishBatchRequestEntry) (fail *types.BatchResultErrorEntry)
	callErr   func(n int) error
	// maxEntries, when set, refuses bigger batches like goaws does.
	maxEntries int
}

func (f *fakeSNS) Publish(ctx context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.callErr != nil {
		if err := f.callErr(f.calls); err != nil {
			return nil, err
		}
	}
	f.published = append(f.published, aws.ToString(in.TopicArn)+" "+aws.ToString(in.Message))
	return &sns.PublishOutput{MessageId: aws.String("x")}, nil
}

func (f *fakeSNS) PublishBatch(ctx context.Context, in *sns.PublishBatchInput, _ ...func(*sns.Options)) (*sns.PublishBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.batchLens = append(f.batchLens, len(in.PublishBatchRequestEntries))
	if f.maxEntries > 0 && len(in.PublishBatchRequestEntries) > f.maxEntries {
		return nil, &smithy.GenericAPIError{Code: "AWS.SimpleNotificationService.TooManyEntriesInBatchRequest"}
	}
	if f.callErr != nil {
		if err := f.callErr(f.calls); err != nil {
			return nil, err
		}
	}
	out := &sns.PublishBatchOutput{}
	size := 0
	for _, e := range in.PublishBatchRequestEntries {
		size += len(aws.ToString(e.Message))
		if f.hook != nil {
			if fe := f.hook(f.calls, e); fe != nil {
				fe.Id = e.Id
				out.Failed = append(out.Failed, *fe)
				continue
			}
		}
		f.published = append(f.published, aws.ToString(in.TopicArn)+" "+aws.ToString(e.Message))
		out.Successful = append(out.Successful, types.PublishBatchResultEntry{Id: e.Id, MessageId: aws.String("x")})
	}
	if len(in.PublishBatchRequestEntries) > MaxBatch || size > MaxPayload {
		return nil, &smithy.GenericAPIError{Code: "BatchRequestTooLong"}
	}
	return out, nil
}

func noSleep(context.Context, time.Duration) error { return nil }

func msgs(n int, body string) []results.Message {
	var out []results.Message
	for i := range n {
		out = append(out, results.Message{Subject: "alarm", Body: []byte(body + string(rune('a'+i%26))), Attributes: map[string]string{"alarm": "order-flood"}})
	}
	return out
}

func TestPublisherBatching(t *testing.T) {
	big := strings.Repeat("b", 100*1024)
	tests := []struct {
		name      string
		in        []results.Message
		seq       bool
		max       int
		wantLens  []int
		wantCalls int
	}{
		{name: "23 small messages", in: msgs(23, "m"), wantLens: []int{10, 10, 3}, wantCalls: 3},
		{name: "size bound: 100 KiB bodies two per call", in: msgs(5, big), wantLens: []int{2, 2, 1}, wantCalls: 3},
		{name: "sequential", in: msgs(3, "m"), seq: true, wantCalls: 3},
		{name: "server refuses 10: shrink to 9", in: msgs(23, "m"), max: 9, wantLens: []int{10, 9, 9, 5}, wantCalls: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSNS{maxEntries: tt.max}
			p, err := New(f, Options{TopicARN: "arn:t", Sequential: tt.seq})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Publish(t.Context(), tt.in); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			if d := cmp.Diff(tt.wantLens, f.batchLens); d != "" {
				t.Errorf("batch sizes (-want +got):\n%s", d)
			}
			if f.calls != tt.wantCalls || len(f.published) != len(tt.in) {
				t.Errorf("calls %d published %d; want %d, %d", f.calls, len(f.published), tt.wantCalls, len(tt.in))
			}
			// Order within a topic is kept.
			for i, m := range tt.in {
				if f.published[i] != "arn:t "+string(m.Body) {
					t.Errorf("published[%d] out of order", i)
					break
				}
			}
		})
	}
}

func TestPublisherFaults(t *testing.T) {
	throttle := &smithy.GenericAPIError{Code: "Throttled"}
	tests := []struct {
		name       string
		maxAtt     int
		callErr    func(n int) error
		hook       func(n int, e types.PublishBatchRequestEntry) *types.BatchResultErrorEntry
		in         []results.Message
		wantFailed []int
		wantIs     error
		published  int
	}{
		{
			name:      "throttled call retried",
			callErr:   func(n int) error { return map[bool]error{true: throttle}[n <= 2] },
			in:        msgs(3, "m"),
			published: 3,
		},
		{
			name: "server-side entry failure retried, sender fault reported",
			hook: func(n int, e types.PublishBatchRequestEntry) *types.BatchResultErrorEntry {
				switch {
				case aws.ToString(e.Message) == "mb":
					return &types.BatchResultErrorEntry{Code: aws.String("InvalidParameter"), SenderFault: true}
				case aws.ToString(e.Message) == "mc" && n == 1:
					return &types.BatchResultErrorEntry{Code: aws.String("InternalError"), SenderFault: false}
				}
				return nil
			},
			in:         msgs(4, "m"),
			wantFailed: []int{1},
			wantIs:     ErrEntryFailed,
			published:  3,
		},
		{
			name:       "invalid messages fail alone",
			in:         append(msgs(2, "m"), results.Message{Body: nil}, results.Message{Body: []byte{0xff}}, results.Message{Body: []byte("x"), Attributes: map[string]string{"bad name": "v"}}),
			wantFailed: []int{2, 3, 4},
			wantIs:     sinks.ErrInvalidInput,
			published:  2,
		},
		{
			name:       "throttled until attempts run out",
			maxAtt:     3,
			callErr:    func(int) error { return throttle },
			in:         msgs(2, "m"),
			wantFailed: []int{0, 1},
			wantIs:     retry.ErrExhausted,
		},
		{
			name:       "permanent call error",
			callErr:    func(int) error { return &smithy.GenericAPIError{Code: "NotFound"} },
			in:         msgs(2, "m"),
			wantFailed: []int{0, 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSNS{callErr: tt.callErr, hook: tt.hook}
			p, err := New(f, Options{TopicARN: "arn:t", Retry: retry.Policy{MaxAttempts: tt.maxAtt, Sleep: noSleep}})
			if err != nil {
				t.Fatal(err)
			}
			err = p.Publish(t.Context(), tt.in)
			var got []int
			var be *sinks.BatchError
			if errors.As(err, &be) {
				for _, fl := range be.Failed {
					got = append(got, fl.Index)
					if tt.wantIs != nil && !errors.Is(fl.Err, tt.wantIs) {
						t.Errorf("failure %d: %v is not %v", fl.Index, fl.Err, tt.wantIs)
					}
				}
			} else if err != nil {
				t.Fatalf("error %v is not a BatchError", err)
			}
			if d := cmp.Diff(tt.wantFailed, got); d != "" {
				t.Errorf("failed (-want +got):\n%s", d)
			}
			if len(f.published) != tt.published {
				t.Errorf("published %d, want %d", len(f.published), tt.published)
			}
		})
	}
}

func TestSanitizeSubject(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Order flood: 42 orders in 15s", "Order flood: 42 orders in 15s"},
		{"  line one\nline two\r\n", "line one line two"},
		{"Größe\t\tüber", "Gr??e ?ber"},
		{"\x00\x01", ""},
		{strings.Repeat("a", 150), strings.Repeat("a", 100)},
		{strings.Repeat("a", 99) + " b", strings.Repeat("a", 99)},
	}
	for _, tt := range tests {
		got := SanitizeSubject(tt.in)
		if got != tt.want {
			t.Errorf("SanitizeSubject(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if len(got) > MaxSubject {
			t.Errorf("SanitizeSubject(%q) is %d long", tt.in, len(got))
		}
	}
}

// captureSNS is an SNS endpoint that accepts every Publish and
// PublishBatch entry and keeps the form each request carried on the wire,
// so a test sees exactly what the SDK sent (goaws v0.5.4 parses but
// ignores MessageDeduplicationId and MessageGroupId on SNS publishes, so
// a FIFO topic there would not show whether they were sent).
type captureSNS struct {
	mu    sync.Mutex
	forms []url.Values
}

func (c *captureSNS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.forms = append(c.forms, r.PostForm)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	switch r.PostForm.Get("Action") {
	case "PublishBatch":
		var ok strings.Builder
		for i := 1; r.PostForm.Get(fmt.Sprintf("PublishBatchRequestEntries.member.%d.Id", i)) != ""; i++ {
			fmt.Fprintf(&ok, "<member><Id>%s</Id><MessageId>x%d</MessageId></member>",
				r.PostForm.Get(fmt.Sprintf("PublishBatchRequestEntries.member.%d.Id", i)), i)
		}
		fmt.Fprintf(w, `<PublishBatchResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishBatchResult><Successful>%s</Successful><Failed></Failed></PublishBatchResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PublishBatchResponse>`, ok.String())
	default:
		fmt.Fprint(w, `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>x</MessageId></PublishResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PublishResponse>`)
	}
}

// TestFIFOIDsOnTheWire: a FIFO topic's messages carry the message's
// DedupID and GroupID as MessageDeduplicationId and MessageGroupId, in
// both PublishBatch and Publish; a standard topic's carry neither (SNS
// rejects them there); a FIFO message without ids is invalid input.
func TestFIFOIDsOnTheWire(t *testing.T) {
	const fifo, std = "arn:aws:sns:us-east-1:000000000000:alarms.fifo", "arn:aws:sns:us-east-1:000000000000:alarms"
	for _, sequential := range []bool{false, true} {
		t.Run(fmt.Sprintf("sequential=%v", sequential), func(t *testing.T) {
			capt := &captureSNS{}
			srv := httptest.NewServer(capt)
			defer srv.Close()
			client := sns.New(sns.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
				Credentials: aws.AnonymousCredentials{}, HTTPClient: srv.Client()})
			p, err := New(client, Options{Sequential: sequential})
			if err != nil {
				t.Fatal(err)
			}
			msgs := []results.Message{
				{Topic: fifo, Body: []byte(`{"a":1}`), DedupID: "of-1", GroupID: "of-1"},
				{Topic: std, Body: []byte(`{"a":2}`), DedupID: "of-2", GroupID: "of-2", Attributes: map[string]string{"dedup_id": "of-2"}},
			}
			if err := p.Publish(t.Context(), msgs); err != nil {
				t.Fatal(err)
			}
			prefix := "PublishBatchRequestEntries.member.1."
			if sequential {
				prefix = ""
			}
			got := map[string][2]string{}
			for _, f := range capt.forms {
				got[f.Get("TopicArn")] = [2]string{f.Get(prefix + "MessageDeduplicationId"), f.Get(prefix + "MessageGroupId")}
			}
			want := map[string][2]string{fifo: {"of-1", "of-1"}, std: {"", ""}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ids on the wire (-want +got):\n%s", diff)
			}
			err = p.Publish(t.Context(), []results.Message{{Topic: fifo, Body: []byte("x")}})
			if !errors.Is(err, sinks.ErrInvalidInput) {
				t.Errorf("FIFO message without ids: err = %v; want ErrInvalidInput", err)
			}
		})
	}
}
