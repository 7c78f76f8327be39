package streams

import (
	"net/http"
	"time"
)

// awaitSubscribeResponse waits Config.SubscribeResponseDelay before a subscription's
// response headers, so that the client has finished writing its request before it sees
// the response (see the Config field). It reports false when the call or the service
// ended first.
func (s *Service) awaitSubscribeResponse(r *http.Request) bool {
	d := s.cfg.SubscribeResponseDelay
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.ctx.Done():
	}
	return false
}
