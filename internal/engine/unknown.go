package engine

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/fxamacker/cbor/v2"

	"github.com/freshet/freshet/internal/kinesiswire"
)

// writeUnknownOperation answers a request that names no operation of any service, in
// the protocol the request asked for: CBOR for Kinesis CBOR 1.1 and Smithy RPC v2 CBOR,
// otherwise JSON 1.0 or 1.1 as its Content-Type says (1.1 when it says neither).
func writeUnknownOperation(w http.ResponseWriter, r *http.Request) {
	what := r.Header.Get("X-Amz-Target")
	if what == "" {
		what = r.URL.Path
	}
	if len(what) > 128 {
		what = what[:128]
	}
	what = strings.ToValidUTF8(what, "?")
	message := "Unknown operation " + strconv.Quote(what)
	const code = "UnknownOperationException"
	h := w.Header()
	h.Set("X-Amzn-Errortype", code)
	ct := r.Header.Get("Content-Type")
	var body []byte
	switch {
	case strings.Contains(ct, "x-amz-cbor"):
		h.Set("Content-Type", "application/x-amz-cbor-1.1")
		body, _ = cbor.Marshal(map[string]string{"__type": code, "message": message})
	case r.Header.Get("Smithy-Protocol") == "rpc-v2-cbor" || strings.Contains(ct, "cbor"):
		h.Set("Content-Type", "application/cbor")
		h.Set("Smithy-Protocol", "rpc-v2-cbor")
		body, _ = cbor.Marshal(map[string]string{"__type": code, "message": message})
	default:
		if strings.Contains(ct, "x-amz-json-1.0") {
			h.Set("Content-Type", "application/x-amz-json-1.0")
		} else {
			h.Set("Content-Type", "application/x-amz-json-1.1")
		}
		body = append(body, `{"__type":"`+code+`","message":`...)
		body = kinesiswire.AppendString(body, message)
		body = append(body, '}')
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write(body)
}
