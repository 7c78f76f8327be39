// Package wordcount is a user's service, kept in its own module to show Freshet's
// freshettest used the way an application uses it: it counts words in the lines read
// from a Kinesis stream and publishes the total as a CloudWatch metric.
package wordcount

import (
	"context"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/freshet/freshet/consumer"
)

// Counter counts words per partition key (the author of a line).
type Counter struct {
	mu    sync.Mutex
	words map[string]int
	lines int
	cw    *cloudwatch.Client
}

// New returns a Counter that publishes to cw.
func New(cw *cloudwatch.Client) *Counter { return &Counter{words: map[string]int{}, cw: cw} }

// Handle is the consumer handler: it counts the batch, publishes its word count, and
// lets the worker checkpoint by returning nil.
func (c *Counter) Handle(ctx context.Context, _ consumer.ShardInfo, records []consumer.Record) error {
	n := 0
	c.mu.Lock()
	for _, r := range records {
		w := len(strings.Fields(string(r.Data)))
		c.words[r.PartitionKey] += w
		c.lines++
		n += w
	}
	c.mu.Unlock()
	_, err := c.cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("wordcount"),
		MetricData: []types.MetricDatum{{MetricName: aws.String("Words"), Value: aws.Float64(float64(n)), Unit: types.StandardUnitCount}}})
	return err
}

// Lines returns how many lines were counted.
func (c *Counter) Lines() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lines
}

// Words returns the words counted for one author.
func (c *Counter) Words(author string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.words[author]
}
