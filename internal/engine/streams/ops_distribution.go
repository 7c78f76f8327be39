package streams

import "net/http"

// checkDistribution validates a RecordDistributionStrategy member for a stream of mode:
// "" when absent, AUTO only on ON_DEMAND streams.
func checkDistribution(v *string, member, mode string) (string, *APIError) {
	if v == nil {
		return "", nil
	}
	switch *v {
	case distributionAuto, distributionPartitionKey:
	default:
		return "", errValidation(quoteValue(*v), member, "must satisfy enum value set: [AUTO, USER_PARTITION_KEY]")
	}
	if mode != modeOnDemand {
		return "", errInvalid("The record distribution strategy can only be set on ON_DEMAND streams.")
	}
	return *v, nil
}

type updateDistributionReq struct {
	streamRef
	RecordDistributionStrategy *string `json:"RecordDistributionStrategy"`
}

// opUpdateStreamRecordDistributionStrategy switches an ON_DEMAND stream between AUTO
// and USER_PARTITION_KEY. The change applies to the next record written; stored records
// keep their shards.
func (s *Service) opUpdateStreamRecordDistributionStrategy(c *call) (any, error) {
	var req updateDistributionReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.StreamARN == nil {
		return nil, errMissing("streamARN")
	}
	name, e := s.resolveName(req.streamRef, true)
	if e != nil {
		return nil, e
	}
	if req.RecordDistributionStrategy == nil {
		return nil, errMissing("recordDistributionStrategy")
	}
	st, e := s.lookup(name, c.now)
	if e != nil {
		return nil, e
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	d, e := checkDistribution(req.RecordDistributionStrategy, "recordDistributionStrategy", st.mode)
	if e != nil {
		return nil, e
	}
	if e := s.requireActiveLocked(st, c.now); e != nil {
		return nil, e
	}
	st.distribution = d
	return nil, nil
}

// errDryRun is the answer to a data-plane call with DryRun set whose checks all passed.
func errDryRun() *APIError {
	return apiErr("DryRunOperationException", http.StatusBadRequest,
		"Request would have succeeded, but the DryRun flag is set.")
}
