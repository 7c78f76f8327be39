// agg_vectors.js: runs aws-kinesis-agg (pinned in integration/peers) on inputs given as
// JSON on stdin and prints its results as JSON on stdout, for
// integration/aggregation_test.go.
//
// stdin:  {"aggregate":   [[{"pk": "...", "ehk": "..." (optional), "data": "<base64>"}, ...], ...],
//          "deaggregate": [{"pk": "...", "data": "<base64>"}, ...]}
// stdout: {"aggregated":   [{"pk": "...", "ehk": "..." or null, "data": "<base64>"}, ...],
//          "deaggregated": [[{"pk": "...", "ehk": "..." or null, "sub": n, "data": "<base64>"}, ...]
//                           or {"error": "..."}, ...]}
//
// Each "aggregate" group is added to one RecordAggregator and built into one encoded
// record; each "deaggregate" entry is one Kinesis record given to deaggregateSync with
// checksums verified.
//
// Tags: RecordAggregator has no way to add tags, so each "tagged" group
// ([{"pk", "ehk", "data", "tags": [{"key", "value"}]}, ...]) is encoded directly with
// aws-kinesis-agg's own protobuf schema (its AggregatedRecord, keys in order of first
// use), framed with the KPL magic and MD5 ("taggedEncoded": ["<base64>", ...]); each
// "decodeTags" entry is a KPL aggregate decoded with that schema, returning every
// record's tags ("decodedTags": [[[{"key", "value"}]]]).
'use strict';
const agg = require('aws-kinesis-agg');
const common = require('aws-kinesis-agg/lib/common');
const crypto = require('crypto');

function readStdin() {
	const chunks = [];
	const fs = require('fs');
	let buf = Buffer.alloc(1 << 16);
	for (;;) {
		let n;
		try {
			n = fs.readSync(0, buf, 0, buf.length, null);
		} catch (e) {
			if (e.code === 'EAGAIN') continue;
			if (e.code === 'EOF') break;
			throw e;
		}
		if (n === 0) break;
		chunks.push(Buffer.from(buf.subarray(0, n)));
	}
	return Buffer.concat(chunks).toString('utf8');
}

const input = JSON.parse(readStdin());
const out = { aggregated: [], deaggregated: [], taggedEncoded: [], decodedTags: [] };

for (const group of input.tagged || []) {
	const pks = [], ehks = [];
	const records = group.map((r) => {
		if (!pks.includes(r.pk)) pks.push(r.pk);
		const rec = { partition_key_index: pks.indexOf(r.pk), data: Buffer.from(r.data, 'base64'), tags: [] };
		if (r.ehk !== undefined && r.ehk !== null) {
			if (!ehks.includes(r.ehk)) ehks.push(r.ehk);
			rec.explicit_hash_key_index = ehks.indexOf(r.ehk);
		}
		for (const t of r.tags || []) {
			const tag = { key: t.key };
			if (t.value !== '') tag.value = t.value;
			rec.tags.push(tag);
		}
		return rec;
	});
	const body = common.AggregatedRecord.encode({ partition_key_table: pks, explicit_hash_key_table: ehks, records: records }).finish();
	const md5 = crypto.createHash('md5').update(body).digest();
	out.taggedEncoded.push(Buffer.concat([common.magic, body, md5]).toString('base64'));
}

for (const b64 of input.decodeTags || []) {
	const buf = Buffer.from(b64, 'base64');
	const body = buf.subarray(common.magic.length, buf.length - 16);
	const decoded = common.AggregatedRecord.decode(body);
	out.decodedTags.push(decoded.records.map((r) => (r.tags || []).map((t) => ({ key: t.key, value: t.value || '' }))));
}

for (const group of input.aggregate || []) {
	const a = new agg.RecordAggregator();
	for (const r of group) {
		const rec = { partitionKey: r.pk, data: Buffer.from(r.data, 'base64') };
		if (r.ehk !== undefined && r.ehk !== null) rec.explicitHashKey = r.ehk;
		a.addUserRecord(rec);
	}
	const enc = a.build();
	out.aggregated.push({
		pk: enc.partitionKey,
		ehk: enc.ExplicitHashKey === undefined ? null : enc.ExplicitHashKey,
		data: enc.data.toString('base64'),
	});
}

for (const r of input.deaggregate || []) {
	const kinesisRecord = { partitionKey: r.pk, sequenceNumber: '1', data: r.data };
	let result;
	agg.deaggregateSync(kinesisRecord, true, (err, userRecords) => {
		if (err) {
			result = { error: String(err && err.message ? err.message : err) };
			return;
		}
		result = userRecords.map((u) => ({
			pk: u.partitionKey,
			ehk: u.explicitPartitionKey === undefined ? null : u.explicitPartitionKey,
			sub: u.subSequenceNumber === undefined ? null : u.subSequenceNumber,
			data: u.data,
		}));
	});
	out.deaggregated.push(result);
}

process.stdout.write(JSON.stringify(out));
