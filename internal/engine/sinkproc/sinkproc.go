// Package sinkproc runs the bundled engine in a child process, as the Kinesis sink of a
// benchmark, so that the benchmark's own CPU time (getrusage of its process) is the
// client's alone, as it is for any producer talking to the real service.
//
// A benchmark binary calls MaybeServe first thing in main: in the child (started by
// Start, which re-executes the binary with an environment variable) it serves the
// engine and never returns. The parent drives the child over its standard input and
// output with one JSON command and one JSON answer per line: create a stream, read a
// stream back and check it (Check), delete it, report the child's CPU time and what it
// served (Usage: calls by operation, DynamoDB capacity consumed).
//
// Benchmark records carry their own identity in their first 16 bytes (Stamp): the index
// of their partition key and their rank among that key's records, so Check can count
// what a producer lost, duplicated, reordered or stored under a wrong key.
package sinkproc

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/streams"
)

// envChild marks the child process; its value is the JSON of the child's Config.
const envChild = "FRESHET_SINKPROC_CHILD"

// StampSize is the number of bytes Stamp writes at the start of a record's data.
const StampSize = 16

// Config is the engine the child runs.
type Config struct {
	// Limits turns on the per-shard throughput limits.
	Limits bool `json:"limits"`
	// WriteBytesPerSecond and WriteRecordsPerSecond override the per-shard write limits
	// when Limits is on (1 MiB/s and 1,000 records/s when zero).
	WriteBytesPerSecond   float64 `json:"write_bytes_per_s,omitempty"`
	WriteRecordsPerSecond float64 `json:"write_records_per_s,omitempty"`
	// ThrottleRate and InternalFailureRate fail that fraction of PutRecords entries at
	// random (streams.EntryFaults), on shards far below any limit.
	ThrottleRate        float64 `json:"throttle_rate,omitempty"`
	InternalFailureRate float64 `json:"internal_failure_rate,omitempty"`
	// OnDemandShards is the shard count of streams made by CreateOnDemandStream (the
	// engine's default when zero).
	OnDemandShards int `json:"on_demand_shards,omitempty"`
	// TLS adds the engine's HTTPS listener (a generated certificate), for clients that
	// speak only TLS such as the KPL's native daemon; Sink.TLSURL is its endpoint.
	TLS bool `json:"tls,omitempty"`
	// ShardLimit is the account's shard limit (the engine's default when zero).
	ShardLimit int `json:"shard_limit,omitempty"`
}

// Usage is what an engine has served so far: its calls by operation and the capacity
// its DynamoDB tables consumed.
type Usage struct {
	// Calls counts requests by "Service.Operation" (Engine.Calls).
	Calls map[string]uint64 `json:"calls"`
	// Tables is the consumed capacity of each table, by table name.
	Tables map[string]TableUsage `json:"tables"`
}

// TableUsage is the capacity one table consumed since it was created.
type TableUsage struct {
	ReadUnits  float64 `json:"read_units"`
	WriteUnits float64 `json:"write_units"`
	// ReadsByOperation splits ReadUnits by operation (GetItem, Query, Scan, BatchGetItem).
	ReadsByOperation map[string]float64 `json:"reads_by_operation"`
}

// UsageOf reads e's Usage.
func UsageOf(e *engine.Engine) Usage {
	u := Usage{Calls: e.Calls(), Tables: map[string]TableUsage{}}
	byOp := e.Tables.ReadsByOperation()
	for name, c := range e.Tables.Consumed() {
		u.Tables[name] = TableUsage{ReadUnits: c.ReadUnits, WriteUnits: c.WriteUnits, ReadsByOperation: byOp[name]}
	}
	return u
}

// Check is what a stream holds, read back by the child.
type Check struct {
	// KinesisRecords is the number of Kinesis records stored.
	KinesisRecords int64 `json:"kinesis_records"`
	// Stored is the number of user records stored (aggregates de-aggregated).
	Stored int64 `json:"stored_user_records"`
	// Distinct is the number of distinct stamped user records stored.
	Distinct int64 `json:"distinct_user_records"`
	// Duplicates is Stored minus Distinct: user records stored more than once.
	Duplicates int64 `json:"duplicates"`
	// OutOfOrder counts user records stored in their shard after a later record of the
	// same partition key (a stamp of lower rank after a higher one).
	OutOfOrder int64 `json:"out_of_order"`
	// WrongKeys counts user records whose partition key is not the one their stamp names.
	WrongKeys int64 `json:"wrong_partition_keys"`
	// Unstamped counts user records too short to carry a stamp.
	Unstamped int64 `json:"unstamped"`
}

// Key returns the partition key of key index i, as Check expects it.
func Key(i int) string { return "key-" + strconv.Itoa(i) }

// Stamp writes the identity of a record (its key index and its rank among the records
// of that key) into the first StampSize bytes of data, which must be that long.
func Stamp(data []byte, key, rank int) {
	binary.BigEndian.PutUint64(data[0:8], uint64(key))
	binary.BigEndian.PutUint64(data[8:16], uint64(rank))
}

// MaybeServe serves the engine and exits when the process is a child started by Start;
// otherwise it returns at once.
func MaybeServe() {
	spec, ok := os.LookupEnv(envChild)
	if !ok {
		return
	}
	if err := serve(spec, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sinkproc:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

type command struct {
	Op     string `json:"op"`
	Stream string `json:"stream,omitempty"`
	Shards int    `json:"shards,omitempty"`
}

type answer struct {
	URL    string  `json:"url,omitempty"`
	TLSURL string  `json:"tls_url,omitempty"`
	Err    string  `json:"err,omitempty"`
	Check  *Check  `json:"check,omitempty"`
	CPUS   float64 `json:"cpu_s,omitempty"`
	Usage  *Usage  `json:"usage,omitempty"`
}

func serve(spec string, in io.Reader, out io.Writer) error {
	var cfg Config
	if err := json.Unmarshal([]byte(spec), &cfg); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	ecfg := engine.Config{Streams: streams.Config{
		Limits: cfg.Limits, WriteBytesPerSecond: cfg.WriteBytesPerSecond, WriteRecordsPerSecond: cfg.WriteRecordsPerSecond,
		OnDemandShards: cfg.OnDemandShards, OnDemandWindow: -1, ShardLimit: cfg.ShardLimit,
	}}
	if cfg.TLS {
		ecfg.TLS = &engine.TLSConfig{}
	}
	e, err := engine.Start(ecfg)
	if err != nil {
		return err
	}
	defer e.Close()
	if cfg.ThrottleRate > 0 || cfg.InternalFailureRate > 0 {
		if err := e.Streams.SetEntryFaults(streams.EntryFaults{ThrottleRate: cfg.ThrottleRate, InternalFailureRate: cfg.InternalFailureRate}); err != nil {
			return err
		}
	}
	enc := json.NewEncoder(out)
	if err := enc.Encode(answer{URL: e.URL(), TLSURL: e.TLSURL()}); err != nil {
		return err
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		var c command
		var a answer
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			return fmt.Errorf("command: %w", err)
		}
		switch c.Op {
		case "create":
			err = e.Streams.CreateStream(c.Stream, c.Shards)
		case "create-on-demand":
			err = e.Streams.CreateOnDemandStream(c.Stream, 0)
		case "delete":
			err = e.Streams.DeleteStream(c.Stream)
		case "check":
			var ch Check
			ch, err = check(e, c.Stream)
			a.Check = &ch
		case "cpu":
			a.CPUS = cpuSeconds()
		case "usage":
			u := UsageOf(e)
			a.Usage = &u
		case "quit":
			return nil
		default:
			err = fmt.Errorf("unknown op %q", c.Op)
		}
		if err != nil {
			a.Err = err.Error()
		}
		if err := enc.Encode(a); err != nil {
			return err
		}
	}
	return sc.Err()
}

func check(e *engine.Engine, stream string) (Check, error) {
	recs, err := e.Streams.Records(stream)
	if err != nil {
		return Check{}, err
	}
	var c Check
	last := map[uint64]uint64{}    // key index -> highest rank seen in its shard
	shardOf := map[uint64]string{} // key index -> shard of its last record
	seen := map[[2]uint64]struct{}{}
	for _, r := range recs {
		c.KinesisRecords++
		urs, err := aggregation.Deaggregate(aggregation.Record{PartitionKey: r.PartitionKey, Data: r.Data})
		if err != nil {
			return c, fmt.Errorf("record %s of shard %s: %w", r.SequenceNumber, r.ShardID, err)
		}
		for _, u := range urs {
			c.Stored++
			if len(u.Data) < StampSize {
				c.Unstamped++
				continue
			}
			key := binary.BigEndian.Uint64(u.Data[0:8])
			rank := binary.BigEndian.Uint64(u.Data[8:16])
			if u.PartitionKey != Key(int(key)) {
				c.WrongKeys++
			}
			id := [2]uint64{key, rank}
			if _, dup := seen[id]; dup {
				c.Duplicates++
				continue
			}
			seen[id] = struct{}{}
			if hi, ok := last[key]; ok && shardOf[key] == r.ShardID && rank < hi {
				c.OutOfOrder++
				continue
			}
			last[key], shardOf[key] = rank, r.ShardID
		}
	}
	c.Distinct = int64(len(seen))
	return c, nil
}

// Sink is a running child engine.
type Sink struct {
	cmd    *exec.Cmd
	url    string
	tlsURL string

	mu  sync.Mutex
	in  io.WriteCloser
	out *json.Decoder
}

// Start re-executes the running binary as a child serving the engine of cfg and returns
// once it listens. The binary must call MaybeServe at the start of main.
func Start(cfg Config) (*Sink, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("sinkproc: %w", err)
	}
	spec, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("sinkproc: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envChild+"="+string(spec))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("sinkproc: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("sinkproc: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("sinkproc: start child: %w", err)
	}
	s := &Sink{cmd: cmd, in: in, out: json.NewDecoder(out)}
	var a answer
	if err := s.out.Decode(&a); err != nil || a.URL == "" {
		_ = s.Close()
		return nil, fmt.Errorf("sinkproc: child did not report its address: %v %s", err, a.Err)
	}
	s.url, s.tlsURL = a.URL, a.TLSURL
	return s, nil
}

// URL is the child engine's endpoint.
func (s *Sink) URL() string { return s.url }

// TLSURL is the child engine's HTTPS endpoint, or "" without Config.TLS.
func (s *Sink) TLSURL() string { return s.tlsURL }

// AWSConfig returns an SDK configuration for the child engine.
func (s *Sink) AWSConfig() aws.Config { return engine.ClientConfig(s.url) }

func (s *Sink) do(c command) (answer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var a answer
	if err := json.NewEncoder(s.in).Encode(c); err != nil {
		return a, fmt.Errorf("sinkproc: %s: %w", c.Op, err)
	}
	if err := s.out.Decode(&a); err != nil {
		return a, fmt.Errorf("sinkproc: %s: %w", c.Op, err)
	}
	if a.Err != "" {
		return a, fmt.Errorf("sinkproc: %s: %s", c.Op, a.Err)
	}
	return a, nil
}

// CreateStream creates a provisioned stream of shards shards, active at once.
func (s *Sink) CreateStream(name string, shards int) error {
	_, err := s.do(command{Op: "create", Stream: name, Shards: shards})
	return err
}

// CreateOnDemandStream creates an on-demand stream of Config.OnDemandShards shards,
// active at once.
func (s *Sink) CreateOnDemandStream(name string) error {
	_, err := s.do(command{Op: "create-on-demand", Stream: name})
	return err
}

// DeleteStream deletes a stream and its records.
func (s *Sink) DeleteStream(name string) error {
	_, err := s.do(command{Op: "delete", Stream: name})
	return err
}

// Check reads a stream back in the child and counts its records.
func (s *Sink) Check(name string) (Check, error) {
	a, err := s.do(command{Op: "check", Stream: name})
	if err != nil {
		return Check{}, err
	}
	if a.Check == nil {
		return Check{}, errors.New("sinkproc: check: no answer")
	}
	return *a.Check, nil
}

// CPUSeconds returns the user+system CPU time the child has used so far.
func (s *Sink) CPUSeconds() (float64, error) {
	a, err := s.do(command{Op: "cpu"})
	return a.CPUS, err
}

// Usage returns what the child engine has served so far.
func (s *Sink) Usage() (Usage, error) {
	a, err := s.do(command{Op: "usage"})
	if err != nil {
		return Usage{}, err
	}
	if a.Usage == nil {
		return Usage{}, errors.New("sinkproc: usage: no answer")
	}
	return *a.Usage, nil
}

// Close stops the child and waits for it.
func (s *Sink) Close() error {
	s.mu.Lock()
	_ = json.NewEncoder(s.in).Encode(command{Op: "quit"})
	_ = s.in.Close()
	s.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		return <-done
	}
}
