package setup

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// ensureTopic relies on CreateTopic being idempotent: for an existing topic
// with the same attributes it returns that topic's ARN.
func (a *applier) ensureTopic(ctx context.Context, name string) error {
	out, err := a.c.SNS.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name)})
	if err != nil {
		return fmt.Errorf("topic %s: create: %w", name, err)
	}
	a.mu.Lock()
	a.res.TopicARNs[name] = aws.ToString(out.TopicArn)
	a.mu.Unlock()
	return nil
}
