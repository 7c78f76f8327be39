package kinesiswire

import (
	"fmt"
	"math"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// AppendGetRecordsInputCBOR appends the CBOR body of a GetRecords call to b.
func AppendGetRecordsInputCBOR(b []byte, in *kinesis.GetRecordsInput) []byte {
	n := uint64(1)
	if in.Limit != nil {
		n++
	}
	if in.StreamARN != nil {
		n++
	}
	b = AppendHead(b, MajorMap, n)
	b = AppendText(AppendText(b, "ShardIterator"), aws.ToString(in.ShardIterator))
	if in.Limit != nil {
		b = AppendInt(AppendText(b, "Limit"), int64(*in.Limit))
	}
	if in.StreamARN != nil {
		b = AppendText(AppendText(b, "StreamARN"), *in.StreamARN)
	}
	return b
}

// DecodeGetRecordsOutputCBOR decodes the body of a successful CBOR GetRecords response
// into out. Each record's Data is a slice of body (no copy per record); unknown keys
// and null values are skipped. Errors wrap ErrMalformed.
func DecodeGetRecordsOutputCBOR(body []byte, out *kinesis.GetRecordsOutput) error {
	r := NewReader(body)
	if err := r.getRecordsOutput(out); err != nil {
		return fmt.Errorf("at byte %d: %w", r.i, err)
	}
	if !r.Done() {
		return malformed("%d bytes after the response", len(body)-r.i)
	}
	return nil
}

// fields calls f for every text key of a map whose value is not null; f reads the
// value. Other keys are skipped with their values.
func (r *Reader) fields(scratch *[]byte, f func(key []byte) error) error {
	m, err := r.Container(MajorMap)
	if err != nil {
		return err
	}
	for r.Next(&m) {
		key, ok, err := r.Key(scratch)
		if err != nil {
			return err
		}
		if !ok || r.IsNull() {
			continue
		}
		if err := f(key); err != nil {
			return err
		}
	}
	return nil
}

// items calls f for every item of an array.
func (r *Reader) items(f func() error) error {
	a, err := r.Container(MajorArray)
	if err != nil {
		return err
	}
	for r.Next(&a) {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reader) text(scratch *[]byte) (*string, error) {
	b, err := r.Text(scratch)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

func (r *Reader) getRecordsOutput(out *kinesis.GetRecordsOutput) error {
	var scratch []byte
	return r.fields(&scratch, func(key []byte) error {
		var err error
		switch string(key) {
		case "Records":
			return r.items(func() error {
				if r.IsNull() {
					return nil
				}
				rec, err := r.record(&scratch)
				if err == nil {
					out.Records = append(out.Records, rec)
				}
				return err
			})
		case "NextShardIterator":
			out.NextShardIterator, err = r.text(&scratch)
		case "MillisBehindLatest":
			var f float64
			if f, err = r.Float(); err == nil {
				if f != math.Trunc(f) || math.Abs(f) > 1<<62 {
					return malformed("MillisBehindLatest %v", f)
				}
				out.MillisBehindLatest = aws.Int64(int64(f))
			}
		case "ChildShards":
			return r.items(func() error {
				if r.IsNull() {
					return nil
				}
				c, err := r.childShard(&scratch)
				if err == nil {
					out.ChildShards = append(out.ChildShards, c)
				}
				return err
			})
		default:
			err = r.Skip()
		}
		return err
	})
}

func (r *Reader) record(scratch *[]byte) (types.Record, error) {
	var rec types.Record
	err := r.fields(scratch, func(key []byte) error {
		var err error
		switch string(key) {
		case "Data":
			rec.Data, err = r.Bytes()
		case "PartitionKey":
			rec.PartitionKey, err = r.text(scratch)
		case "SequenceNumber":
			rec.SequenceNumber, err = r.text(scratch)
		case "ApproximateArrivalTimestamp":
			var f float64
			if f, err = r.Float(); err == nil {
				t := epoch(f)
				rec.ApproximateArrivalTimestamp = &t
			}
		case "EncryptionType":
			var s *string
			if s, err = r.text(scratch); err == nil {
				rec.EncryptionType = types.EncryptionType(*s)
			}
		default:
			err = r.Skip()
		}
		return err
	})
	if rec.Data == nil {
		rec.Data = []byte{}
	}
	return rec, err
}

func (r *Reader) childShard(scratch *[]byte) (types.ChildShard, error) {
	var c types.ChildShard
	err := r.fields(scratch, func(key []byte) error {
		var err error
		switch string(key) {
		case "ShardId":
			c.ShardId, err = r.text(scratch)
		case "ParentShards":
			return r.items(func() error {
				s, err := r.text(scratch)
				if err == nil {
					c.ParentShards = append(c.ParentShards, *s)
				}
				return err
			})
		case "HashKeyRange":
			h := &types.HashKeyRange{}
			c.HashKeyRange = h
			return r.fields(scratch, func(key []byte) error {
				var err error
				switch string(key) {
				case "StartingHashKey":
					h.StartingHashKey, err = r.text(scratch)
				case "EndingHashKey":
					h.EndingHashKey, err = r.text(scratch)
				default:
					err = r.Skip()
				}
				return err
			})
		default:
			err = r.Skip()
		}
		return err
	})
	return c, err
}

// epoch converts a timestamp of the Kinesis CBOR protocol. Kinesis writes epoch
// milliseconds under tag 1 (not the seconds RFC 8949 specifies, which kinesalite
// writes); no arrival time is a billion seconds or more from 1970 (the year 5138) or
// under 1e11 milliseconds (1973), so the magnitude tells the two apart.
func epoch(f float64) time.Time {
	if math.Abs(f) >= 1e11 {
		return time.UnixMilli(int64(math.Round(f)))
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e3))*int64(time.Millisecond))
}
