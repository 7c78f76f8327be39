// Package enginetest starts a bundled engine for one test and builds SDK clients for it.
package enginetest

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/freshet/freshet/internal/engine"
)

// Start starts an engine on a free loopback port and closes it when the test ends.
func Start(tb testing.TB, cfg engine.Config) *engine.Engine {
	tb.Helper()
	e, err := engine.Start(cfg)
	if err != nil {
		tb.Fatalf("start engine: %v", err)
	}
	tb.Cleanup(func() { _ = e.Close() })
	return e
}

// Kinesis returns a Kinesis client for e.
func Kinesis(e *engine.Engine) *kinesis.Client { return kinesis.NewFromConfig(e.AWSConfig()) }

// DynamoDB returns a DynamoDB client for e.
func DynamoDB(e *engine.Engine) *dynamodb.Client { return dynamodb.NewFromConfig(e.AWSConfig()) }

// CloudWatch returns a CloudWatch client for e.
func CloudWatch(e *engine.Engine) *cloudwatch.Client { return cloudwatch.NewFromConfig(e.AWSConfig()) }
