package setup

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// ensureTopic relies on CreateTopic being idempotent: for an existing topic
// with the same attributes it returns that topic's ARN.
func (a *applier) ensureTopic(ctx context.Context, name string) error {
	in := &sns.CreateTopicInput{Name: aws.String(name)}
	if strings.HasSuffix(name, ".fifo") {
		// SNS refuses a .fifo name without FifoTopic; de-duplication is on
		// the MessageDeduplicationId orderflood sends, not on content.
		in.Attributes = map[string]string{"FifoTopic": "true"}
	}
	out, err := a.c.SNS.CreateTopic(ctx, in)
	if err != nil {
		return fmt.Errorf("topic %s: create: %w", name, err)
	}
	a.mu.Lock()
	a.res.TopicARNs[name] = aws.ToString(out.TopicArn)
	a.mu.Unlock()
	return nil
}
