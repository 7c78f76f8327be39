package tables

import (
	"encoding/json"
	"fmt"
	"testing"
)

// TestOutputsEncodeAsJSONMarshal checks that the outputs that write their own JSON write
// exactly what json.Marshal writes for them: members omitted when empty, floats, HTML
// characters, U+2028, invalid UTF-8, control characters, nested and set values.
func TestOutputsEncodeAsJSONMarshal(t *testing.T) {
	odd := Item{
		"s":      {T: TypeS, S: "a<b>&c\u2028d\u2029e\x01f\"g\\h\xffi\t"},
		"n":      {T: TypeN, S: "-1.5E+3"},
		"b":      {T: TypeB, S: "\x00\xff<>"},
		"bool":   {T: TypeBOOL, Bool: true},
		"null":   {T: TypeNULL, Bool: true},
		"l":      {T: TypeL, L: []Value{{T: TypeS, S: "<"}, {T: TypeM, M: Item{"&": {T: TypeN, S: "1"}}}}},
		"ss":     {T: TypeSS, Set: []string{"x", ">"}},
		"bs":     {T: TypeBS, Set: []string{"\x01", "\x02"}},
		"k<&>\n": {T: TypeS, S: "key"},
	}
	plain := Item{"pk": {T: TypeS, S: "shardId-000000000001"}, "leaseCounter": {T: TypeN, S: "12"}}
	caps := []*consumed{nil, {TableName: "t<1>", CapacityUnits: 0.5}, {TableName: "t", CapacityUnits: 1}, {TableName: "t", CapacityUnits: 1e-7},
		{TableName: "t", CapacityUnits: 2.5e21}, {TableName: "t", CapacityUnits: 0}, {TableName: "t", CapacityUnits: 1234567.125}}
	var outs []any
	for _, c := range caps {
		for _, it := range []Item{nil, {}, plain, odd} {
			outs = append(outs, getItemOutput{Item: it, ConsumedCapacity: c}, writeOutput{Attributes: it, ConsumedCapacity: c})
			for _, items := range [][]Item{nil, {}, {plain}, {plain, odd, {}}} {
				outs = append(outs, queryOutput{Items: items, Count: len(items), ScannedCount: 7, LastEvaluatedKey: it, ConsumedCapacity: c})
			}
		}
	}
	for i, out := range outs {
		want, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		got, err := marshalOutput(out)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("output %d (%s):\n got %s\nwant %s", i, fmt.Sprintf("%T", out), got, want)
		}
	}
}
