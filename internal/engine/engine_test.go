package engine_test

import (
	"bytes"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/internal/engine/fault"
)

func post(t *testing.T, url, target, body string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b, nil
}

func TestUnknownTargetGetsServiceError(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	resp, body, err := post(t, e.URL(), "Nope_2020.Do\"x", "{}")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte(`"UnknownOperationException"`)) {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
}

func TestInjectedErrorUsesServiceProtocol(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	e.Faults.Set("Kinesis.ListStreams", fault.Rule{ErrorRate: 1, ErrorCode: "LimitExceededException", ErrorMessage: "slow down"})
	resp, body, err := post(t, e.URL(), "Kinesis_20131202.ListStreams", "{}")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte(`LimitExceededException`)) || !bytes.Contains(body, []byte("slow down")) {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
}

func TestInjectedDropClosesConnection(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	e.Faults.Set("*", fault.Rule{DropRate: 1})
	if _, _, err := post(t, e.URL(), "DynamoDB_20120810.ListTables", "{}"); err == nil {
		t.Fatal("a dropped connection produced a response")
	}
	e.Faults.Reset()
	e.Faults.Set("*", fault.Rule{DropAfterRate: 1})
	if _, _, err := post(t, e.URL(), "DynamoDB_20120810.ListTables", "{}"); err == nil {
		t.Fatal("a connection dropped after the call produced a response")
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	e, err := engine.Start(engine.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := post(t, e.URL(), "Kinesis_20131202.ListStreams", "{}"); err == nil {
		t.Fatal("engine still serving after Close")
	}
}

// TestCallsCountsEachOperation checks that Calls counts the calls routed to each
// operation, faulted ones included, and nothing for an unknown target.
func TestCallsCountsEachOperation(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	if err := e.SetFault("DynamoDB.GetItem", fault.Rule{ErrorRate: 1, ErrorCode: "InternalServerError"}); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"DynamoDB_20120810.ListTables", "DynamoDB_20120810.ListTables", "DynamoDB_20120810.GetItem",
		"Kinesis_20131202.ListStreams", "DynamoDB_20120810.NoSuchOperation"} {
		if _, _, err := post(t, e.URL(), target, "{}"); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]uint64{"DynamoDB.ListTables": 2, "DynamoDB.GetItem": 1, "Kinesis.ListStreams": 1}
	if got := e.Calls(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Calls() = %v, want %v", got, want)
	}
}
