package otelfreshet

import (
	"github.com/freshet/freshet/aggregation"
)

// tagCarrier is a propagation.TextMapCarrier over a record's tags.
type tagCarrier struct{ tags *[]aggregation.Tag }

// Get returns the value of the first tag called key.
func (c tagCarrier) Get(key string) string {
	for _, t := range *c.tags {
		if t.Key == key {
			return t.Value
		}
	}
	return ""
}

// Set replaces the value of the tag called key, or adds it.
func (c tagCarrier) Set(key, value string) {
	for i := range *c.tags {
		if (*c.tags)[i].Key == key {
			(*c.tags)[i].Value = value
			return
		}
	}
	*c.tags = append(*c.tags, aggregation.Tag{Key: key, Value: value})
}

// Keys returns the tags' keys.
func (c tagCarrier) Keys() []string {
	out := make([]string, len(*c.tags))
	for i, t := range *c.tags {
		out[i] = t.Key
	}
	return out
}
