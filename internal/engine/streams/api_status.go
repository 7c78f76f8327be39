package streams

// StreamStatus returns a stream's status as DescribeStreamSummary reports it
// ("CREATING", "ACTIVE", "UPDATING" or "DELETING").
func (s *Service) StreamStatus(name string) (string, error) {
	now := s.clock.Now()
	st, e := s.lookup(name, now)
	if e != nil {
		return "", e
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.statusAt(now), nil
}
