package tables

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"

	"github.com/freshet/freshet/internal/kinesiswire"
)

// jsonAppender is an output that writes its own JSON, byte for byte what json.Marshal
// writes for it, without json.Marshal re-validating and compacting each item's encoding:
// that re-reading cost twice the encoding itself on Scan and Query answers.
type jsonAppender interface {
	appendJSON(b []byte) []byte
}

// marshalOutput encodes a handler's output.
func marshalOutput(out any) ([]byte, error) {
	a, ok := out.(jsonAppender)
	if !ok {
		return json.Marshal(out)
	}
	b := a.appendJSON(nil)
	// json.Marshal escapes <, >, & and U+2028/U+2029 in strings; they can only occur
	// inside strings here, so escaping the whole text matches it.
	if bytes.ContainsAny(b, "<>&") || bytes.IndexByte(b, 0xe2) >= 0 && (bytes.Contains(b, []byte("\u2028")) || bytes.Contains(b, []byte("\u2029"))) {
		var esc bytes.Buffer
		json.HTMLEscape(&esc, b)
		b = esc.Bytes()
	}
	return b, nil
}

// appendFloat writes f as encoding/json writes a float64.
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Like encoding/json: e-09 becomes e-9.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendMember starts member name of an object whose first member may already be written.
func appendMember(b []byte, name string) []byte {
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

func (c *consumed) appendJSON(b []byte) []byte {
	b = append(b, `{"TableName":`...)
	b = kinesiswire.AppendString(b, c.TableName)
	b = append(b, `,"CapacityUnits":`...)
	b = appendFloat(b, c.CapacityUnits)
	return append(b, '}')
}

func (o getItemOutput) appendJSON(b []byte) []byte {
	return appendItemOutput(b, "Item", o.Item, o.ConsumedCapacity)
}

func (o writeOutput) appendJSON(b []byte) []byte {
	return appendItemOutput(b, "Attributes", o.Attributes, o.ConsumedCapacity)
}

// appendItemOutput writes an answer of one item (omitted when empty) named name and the
// consumed capacity (omitted when nil).
func appendItemOutput(b []byte, name string, it Item, c *consumed) []byte {
	b = append(b, '{')
	if len(it) > 0 {
		b = appendItem(appendMember(b, name), it)
	}
	if c != nil {
		b = c.appendJSON(appendMember(b, "ConsumedCapacity"))
	}
	return append(b, '}')
}

func (o queryOutput) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if len(o.Items) > 0 {
		b = append(appendMember(b, "Items"), '[')
		for i, it := range o.Items {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendItem(b, it)
		}
		b = append(b, ']')
	}
	b = strconv.AppendInt(appendMember(b, "Count"), int64(o.Count), 10)
	b = strconv.AppendInt(appendMember(b, "ScannedCount"), int64(o.ScannedCount), 10)
	if len(o.LastEvaluatedKey) > 0 {
		b = appendItem(appendMember(b, "LastEvaluatedKey"), o.LastEvaluatedKey)
	}
	if o.ConsumedCapacity != nil {
		b = o.ConsumedCapacity.appendJSON(appendMember(b, "ConsumedCapacity"))
	}
	return append(b, '}')
}
