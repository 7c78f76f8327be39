// Package lanehash computes the digests of many independent messages at
// once, one message per SIMD lane.
//
// Two hot paths of Freshet hash many short, unrelated buffers: the producer
// signs every PutRecords body with SigV4 (a SHA-256 of the body) and closes
// every KPL aggregate with an MD5 trailer, and the consumer verifies the MD5
// trailer of every aggregate it reads. One MD5 or SHA-256 cannot be
// parallelised, but a batch of them can: with AVX-512 one instruction
// advances sixteen messages by one step (MD5 also has an AVX2 kernel that
// advances eight, run for each half of the sixteen lanes). MD5 and SHA256 take a batch, group
// the messages into rounds of lanes, read each message where it lies (only
// its last partial block and the padding are copied) and fall back to
// crypto/md5 and crypto/sha256 per message where the CPU has no lanes or a
// batch is too small to fill them.
//
// The package has no goroutines, no locks and keeps no state between calls
// beyond what the caller passes in; results equal the standard library's
// bit for bit, which the tests check for every length and lane mix.
package lanehash
