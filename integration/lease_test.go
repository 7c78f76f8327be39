package integration

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/freshet/freshet/integration/peers"
	"github.com/freshet/freshet/lease/leasetest"
)

// TestLeaseOnDynalite runs the lease conformance suite (schema, Java-shaped items,
// lifecycle, handoff, checkpointer, single-table layout, contention) against dynalite, a
// DynamoDB implementation the Freshet team did not write.
func TestLeaseOnDynalite(t *testing.T) {
	p := peers.Dynalite(t)
	leasetest.Run(t, dynamodb.NewFromConfig(p.AWSConfig()))
}
