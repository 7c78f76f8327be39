package tables

import "sort"

// Operations returns the names of the DynamoDB operations the service serves, sorted.
func Operations() []string {
	out := make([]string, 0, len(handlers))
	for op := range handlers {
		out = append(out, op)
	}
	sort.Strings(out)
	return out
}
