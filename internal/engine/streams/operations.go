package streams

import "sort"

// Operations returns the names of the Kinesis operations the service serves, sorted.
func Operations() []string {
	out := []string{"SubscribeToShard"}
	for op := range operations {
		out = append(out, op)
	}
	sort.Strings(out)
	return out
}
