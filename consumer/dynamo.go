package consumer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/lease"
)

// DynamoDBAPI is the part of *dynamodb.Client a Worker uses for its lease table.
type DynamoDBAPI interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// ddbTable keeps the leases in DynamoDB, in the Java KCL item format of package lease,
// with conditional writes for every ownership-sensitive change.
type ddbTable struct {
	api  DynamoDBAPI
	name string
}

func (t *ddbTable) key(k string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{lease.AttrLeaseKey: &types.AttributeValueMemberS{Value: k}}
}

func sAttr(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func nAttr(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func isConditionFailed(err error) bool {
	var cf *types.ConditionalCheckFailedException
	return errors.As(err, &cf)
}

// ensure creates the table (on-demand, leaseKey hash key) unless it exists, and waits
// until it is ACTIVE.
func (t *ddbTable) ensure(ctx context.Context, cfg config) error {
	_, err := t.api.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(t.name),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(lease.AttrLeaseKey), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(lease.AttrLeaseKey), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("consumer: create lease table %s: %w", t.name, err)
	}
	for {
		d, err := t.api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(t.name)})
		if err == nil && d.Table != nil && d.Table.TableStatus == types.TableStatusActive {
			return nil
		}
		select {
		case <-cfg.clock.After(100 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("consumer: lease table %s not active: %w", t.name, ctx.Err())
		}
	}
}

func fromLease(l lease.Lease) leaseRow {
	return leaseRow{Key: l.Key, Owner: l.Owner, Counter: l.Counter, Checkpoint: l.Checkpoint, Pending: l.PendingCheckpoint,
		PendingState: l.PendingCheckpointState, Parents: l.ParentShardIDs, ShardID: l.ShardID, StreamIdentifier: l.StreamIdentifier}
}

func (t *ddbTable) List(ctx context.Context) ([]leaseRow, error) {
	var out []leaseRow
	var start map[string]types.AttributeValue
	for {
		res, err := t.api.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(t.name), ConsistentRead: aws.Bool(true), ExclusiveStartKey: start})
		if err != nil {
			return nil, err
		}
		for _, it := range res.Items {
			if !lease.IsLeaseItem(it) {
				continue
			}
			l, err := lease.UnmarshalItem(it)
			if err != nil {
				continue
			}
			out = append(out, fromLease(l))
		}
		if len(res.LastEvaluatedKey) == 0 {
			return out, nil
		}
		start = res.LastEvaluatedKey
	}
}

func (t *ddbTable) Get(ctx context.Context, key string) (leaseRow, bool, error) {
	res, err := t.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(t.name), Key: t.key(key), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return leaseRow{}, false, err
	}
	if len(res.Item) == 0 {
		return leaseRow{}, false, nil
	}
	l, err := lease.UnmarshalItem(res.Item)
	if err != nil {
		return leaseRow{}, false, err
	}
	return fromLease(l), true, nil
}

func (t *ddbTable) Create(ctx context.Context, r leaseRow) error {
	l := lease.Lease{Key: r.Key, Checkpoint: r.Checkpoint, ParentShardIDs: r.Parents, StreamIdentifier: r.StreamIdentifier}
	if r.StreamIdentifier != "" {
		l.ShardID = r.ShardID
	}
	_, err := t.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(t.name), Item: lease.MarshalItem(&l),
		ConditionExpression:      aws.String("attribute_not_exists(#k)"),
		ExpressionAttributeNames: map[string]string{"#k": lease.AttrLeaseKey},
	})
	if err != nil && !isConditionFailed(err) {
		return err
	}
	return nil
}

func (t *ddbTable) update(ctx context.Context, in *dynamodb.UpdateItemInput) (leaseRow, error) {
	in.TableName = aws.String(t.name)
	in.ReturnValues = types.ReturnValueAllNew
	res, err := t.api.UpdateItem(ctx, in)
	if err != nil {
		return leaseRow{}, err
	}
	l, err := lease.UnmarshalItem(res.Attributes)
	if err != nil {
		return leaseRow{}, err
	}
	return fromLease(l), nil
}

func (t *ddbTable) Renew(ctx context.Context, r leaseRow, owner string) (leaseRow, error) {
	nr, err := t.update(ctx, &dynamodb.UpdateItemInput{
		Key:                       t.key(r.Key),
		UpdateExpression:          aws.String("SET #c = #c + :one"),
		ConditionExpression:       aws.String("#o = :owner AND #c = :counter"),
		ExpressionAttributeNames:  map[string]string{"#c": lease.AttrLeaseCounter, "#o": lease.AttrLeaseOwner},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": nAttr(1), ":owner": sAttr(owner), ":counter": nAttr(r.Counter)},
	})
	if isConditionFailed(err) {
		return leaseRow{}, fmt.Errorf("consumer: renew %s: %w", r.Key, checkpoint.ErrLeaseLost)
	}
	return nr, err
}

func (t *ddbTable) Take(ctx context.Context, r leaseRow, owner string) (leaseRow, error) {
	cond := "#c = :counter AND #o = :prev"
	vals := map[string]types.AttributeValue{":one": nAttr(1), ":zero": nAttr(0), ":owner": sAttr(owner), ":counter": nAttr(r.Counter)}
	if r.Owner == "" {
		cond = "#c = :counter AND attribute_not_exists(#o)"
	} else {
		vals[":prev"] = sAttr(r.Owner)
	}
	nr, err := t.update(ctx, &dynamodb.UpdateItemInput{
		Key:                       t.key(r.Key),
		UpdateExpression:          aws.String("SET #o = :owner, #c = #c + :one, #s = if_not_exists(#s, :zero) + :one"),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  map[string]string{"#c": lease.AttrLeaseCounter, "#o": lease.AttrLeaseOwner, "#s": lease.AttrOwnerSwitches},
		ExpressionAttributeValues: vals,
	})
	if isConditionFailed(err) {
		return leaseRow{}, fmt.Errorf("consumer: take %s: %w", r.Key, errLeaseConflict)
	}
	return nr, err
}

func (t *ddbTable) Release(ctx context.Context, r leaseRow, owner string) error {
	_, err := t.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(t.name),
		Key:                       t.key(r.Key),
		UpdateExpression:          aws.String("REMOVE #o SET #c = #c + :one"),
		ConditionExpression:       aws.String("#o = :owner"),
		ExpressionAttributeNames:  map[string]string{"#c": lease.AttrLeaseCounter, "#o": lease.AttrLeaseOwner},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": nAttr(1), ":owner": sAttr(owner)},
	})
	if isConditionFailed(err) {
		return fmt.Errorf("consumer: release %s: %w", r.Key, checkpoint.ErrLeaseLost)
	}
	return err
}

func (t *ddbTable) WriteCheckpoint(ctx context.Context, key, owner string, cp checkpoint.Value) error {
	_, err := t.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(t.name),
		Key:                 t.key(key),
		UpdateExpression:    aws.String("SET #cp = :cp, #sub = :sub, #sw = :zero REMOVE #p, #psub, #pst"),
		ConditionExpression: aws.String("#o = :owner"),
		ExpressionAttributeNames: map[string]string{"#cp": lease.AttrCheckpoint, "#sub": lease.AttrCheckpointSubSequence, "#sw": lease.AttrOwnerSwitches,
			"#p": lease.AttrPendingCheckpoint, "#psub": lease.AttrPendingCheckpointSubSeq, "#pst": lease.AttrPendingCheckpointState, "#o": lease.AttrLeaseOwner},
		ExpressionAttributeValues: map[string]types.AttributeValue{":cp": sAttr(cp.SequenceNumber), ":sub": nAttr(cp.SubSequenceNumber), ":zero": nAttr(0), ":owner": sAttr(owner)},
	})
	if isConditionFailed(err) {
		return fmt.Errorf("consumer: checkpoint %s: %w", key, checkpoint.ErrLeaseLost)
	}
	return err
}

func (t *ddbTable) WritePendingCheckpoint(ctx context.Context, key, owner string, cp checkpoint.Value, state []byte) error {
	set := "SET #p = :cp, #psub = :sub"
	vals := map[string]types.AttributeValue{":cp": sAttr(cp.SequenceNumber), ":sub": nAttr(cp.SubSequenceNumber), ":owner": sAttr(owner)}
	names := map[string]string{"#p": lease.AttrPendingCheckpoint, "#psub": lease.AttrPendingCheckpointSubSeq, "#o": lease.AttrLeaseOwner}
	if state != nil {
		set += ", #pst = :st"
		vals[":st"] = &types.AttributeValueMemberB{Value: state}
		names["#pst"] = lease.AttrPendingCheckpointState
	}
	_, err := t.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(t.name), Key: t.key(key), UpdateExpression: aws.String(set),
		ConditionExpression: aws.String("#o = :owner"), ExpressionAttributeNames: names, ExpressionAttributeValues: vals,
	})
	if isConditionFailed(err) {
		return fmt.Errorf("consumer: prepare checkpoint %s: %w", key, checkpoint.ErrLeaseLost)
	}
	return err
}
