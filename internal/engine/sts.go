package engine

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
)

// The engine answers STS GetCallerIdentity (the query protocol, a form POST with
// Action=GetCallerIdentity): the KPL's native daemon calls it at start to build the
// stream ARNs it sends with ListShards and PutRecords. The identity is a fixed user of
// the engine's account.

var stsRequestID atomic.Int64

type stsIdentity struct {
	XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ GetCallerIdentityResponse"`
	Arn     string   `xml:"GetCallerIdentityResult>Arn"`
	UserID  string   `xml:"GetCallerIdentityResult>UserId"`
	Account string   `xml:"GetCallerIdentityResult>Account"`
	Request string   `xml:"ResponseMetadata>RequestId"`
}

type stsError struct {
	XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
	Type    string   `xml:"Error>Type"`
	Code    string   `xml:"Error>Code"`
	Message string   `xml:"Error>Message"`
	Request string   `xml:"RequestId"`
}

// serveSTS answers the STS call of a form POST and reports whether r was one.
func (e *Engine) serveSTS(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") == "" ||
		!isForm(r.Header.Get("Content-Type")) {
		return false
	}
	if err := r.ParseForm(); err != nil {
		writeSTS(w, http.StatusBadRequest, stsError{Type: "Sender", Code: "MalformedQueryString", Message: err.Error()})
		return true
	}
	id := "freshet-sts-" + strconv.FormatInt(stsRequestID.Add(1), 10)
	switch action := r.PostForm.Get("Action"); action {
	case "GetCallerIdentity":
		writeSTS(w, http.StatusOK, stsIdentity{
			Arn:     fmt.Sprintf("arn:aws:iam::%s:user/freshet", e.account),
			UserID:  "AIDAFRESHETENGINE0000",
			Account: e.account,
			Request: id,
		})
	default:
		writeSTS(w, http.StatusBadRequest, stsError{Type: "Sender", Code: "InvalidAction",
			Message: fmt.Sprintf("The action %.128s is not valid for this endpoint.", action), Request: id})
	}
	return true
}

func isForm(ct string) bool {
	const form = "application/x-www-form-urlencoded"
	return len(ct) >= len(form) && ct[:len(form)] == form
}

func writeSTS(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(b)
}
