package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/streams"
)

// errServiceUnavailable reports that the target does not serve an operation the demo
// needs (the bundled engine's services are built in stages).
var errServiceUnavailable = errors.New("quickstart: service not available")

// target is where the demo runs: the bundled engine in process, an endpoint, or AWS.
// Everything after openTarget uses only its SDK clients, whatever the target.
type target struct {
	Name       string
	AWS        aws.Config
	Engine     *engine.Engine // nil unless the bundled engine runs in process
	Kinesis    *kinesis.Client
	DynamoDB   *dynamodb.Client
	CloudWatch *cloudwatch.Client
}

// openTarget starts the bundled engine (the default) or loads the AWS configuration, and
// checks that the Kinesis service answers.
func openTarget(ctx context.Context, o options) (*target, error) {
	t := &target{}
	switch {
	case o.AWS:
		var opts []func(*config.LoadOptions) error
		if o.Region != "" {
			opts = append(opts, config.WithRegion(o.Region))
		}
		cfg, err := config.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("quickstart: load AWS configuration: %w", err)
		}
		if o.Endpoint != "" {
			cfg.BaseEndpoint = aws.String(o.Endpoint)
		}
		t.AWS, t.Name = cfg, "AWS "+cfg.Region
		if o.Endpoint != "" {
			t.Name = o.Endpoint
		}
	case o.Endpoint != "":
		region := o.Region
		if region == "" {
			region = "us-east-1"
		}
		t.AWS = aws.Config{
			Region:       region,
			Credentials:  credentials.NewStaticCredentialsProvider("freshet", "freshet", ""),
			BaseEndpoint: aws.String(o.Endpoint),
		}
		t.Name = o.Endpoint
	default:
		e, err := engine.Start(engineConfig(o))
		if err != nil {
			return nil, fmt.Errorf("quickstart: start the bundled engine: %w", err)
		}
		t.Engine, t.AWS, t.Name = e, e.AWSConfig(), "bundled engine at "+e.URL()
	}
	t.Kinesis = kinesis.NewFromConfig(t.AWS)
	t.DynamoDB = dynamodb.NewFromConfig(t.AWS)
	t.CloudWatch = cloudwatch.NewFromConfig(t.AWS)
	if err := t.probe(ctx); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// probe calls ListStreams to tell an unavailable Kinesis service from a working one.
func (t *target) probe(ctx context.Context) error {
	_, err := t.Kinesis.ListStreams(ctx, &kinesis.ListStreamsInput{Limit: aws.Int32(1)})
	if err == nil {
		return nil
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "UnknownOperationException" {
		if t.Engine != nil {
			return fmt.Errorf("%w: the bundled engine's Kinesis service does not serve ListStreams yet "+
				"(internal/engine/streams is still being built); the demo cannot run on it: %v", errServiceUnavailable, err)
		}
		return fmt.Errorf("%w: %s does not serve Kinesis ListStreams: %v", errServiceUnavailable, t.Name, err)
	}
	return fmt.Errorf("quickstart: Kinesis at %s: %w", t.Name, err)
}

// Close stops the bundled engine, if any.
func (t *target) Close() {
	if t.Engine != nil {
		_ = t.Engine.Close()
	}
}

// engineConfig is the bundled engine's configuration for the demo.
func engineConfig(o options) engine.Config {
	return engine.Config{Streams: streams.Config{
		Limits: true,
		// The service watches a shard for minutes before it splits; the demo's launch
		// lasts about a minute, so the engine scales on a window scaled to it.
		OnDemandWindow: min(max(o.Duration/5, 2*time.Second), 5*time.Second),
		// The service merges cold shards only after a long quiet time; within the launch
		// only shards that received nothing for a whole window merge.
		OnDemandColdFraction: math.SmallestNonzeroFloat64,
		// The short mode's spike is small enough for a slow CI machine to produce, and such
		// a machine may reach only a fraction of it; the engine splits at 15% of a shard's
		// limit instead of half (still above the baseline's ~10%) to show it regardless.
		OnDemandHotFraction: hotFraction(o),
		// The demo drives the engine's periodic work itself (see demo.scaleWhileProducing)
		// so that scaling stops when the launch ends.
		MaintenanceInterval: -1,
	}}
}

func hotFraction(o options) float64 {
	if o.Short {
		return 0.15
	}
	return 0.5
}

// deleteTables deletes the consumer application's lease, coordinator-state and
// worker-metrics tables, ignoring the ones that do not exist.
func deleteTables(ctx context.Context, ddb *dynamodb.Client, app string) {
	for _, name := range []string{app, app + "-CoordinatorState", app + "-WorkerMetricStats"} {
		_, _ = ddb.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	}
}
