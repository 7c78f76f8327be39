// Package tables is the bundled engine's DynamoDB: tables, items, conditional writes and
// the expression language, served over the DynamoDB JSON 1.0 protocol that the
// aws-sdk-go-v2 dynamodb.Client speaks.
//
// In Freshet's data flow it is the consumer's state store. The lease/ package keeps the
// lease table (one item per shard: owner, counter, checkpoint, parents), the coordinator
// state table and the worker metrics table here, and fences every lease change with a
// conditional write. So the property this package guarantees above all is that every
// write is atomic and linearizable per item: of many concurrent conditional writes to
// one item, exactly the ones whose condition holds against the then-current item
// succeed, and the others fail with ConditionalCheckFailedException (carrying the
// current item when ReturnValuesOnConditionCheckFailure is ALL_OLD).
//
// Items live in a per-table map sharded by partition key; each write holds one shard's
// lock while it reads, checks and replaces its item, and item values are never changed
// in place, so reads share them freely. Global secondary indexes are computed from the
// table on every Query, so they are always as fresh as the table (stronger than the
// service's eventual consistency, which code must not rely on being weaker).
//
// Supported: CreateTable (hash and optional range key of type S, N or B,
// PAY_PER_REQUEST or PROVISIONED, GSIs with KEYS_ONLY, INCLUDE or ALL projections),
// DescribeTable (CREATING then ACTIVE after Config.TableActivationDelay), ListTables,
// DeleteTable, UpdateTable (billing, throughput, create and delete GSIs),
// Update/DescribeContinuousBackups, TagResource, UntagResource, ListTagsOfResource,
// DescribeTimeToLive, GetItem, PutItem, UpdateItem, DeleteItem, BatchGetItem,
// BatchWriteItem, Query and Scan, with condition, filter, key-condition, projection and
// update expressions. Numbers are exact decimals of up to 38 digits. Not supported:
// transactions, PartiQL, local secondary indexes, streams, TTL expiry and the legacy
// (pre-expression) parameters.
package tables
