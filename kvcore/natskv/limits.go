package natskv

import "context"

// consumerLimitError explains err, the server's refusal of a consumer for
// the consumer limit: it looks the stream and the account up to name the
// limit, as the server picks it (the stream's, unless the account's is
// lower; the server's default when neither is set). The lookups get their
// own short deadline: the creation's may be spent.
func (s *store) consumerLimitError(ctx context.Context, err error) error {
	e := &ConsumerLimitError{Bucket: s.bucket, Stream: s.stream, Consumers: -1, Err: err}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(s.opts.Timeout, attemptTimeout))
	defer cancel()
	st, serr := s.sess.js.Stream(ctx, s.stream)
	if serr != nil {
		return e
	}
	info := st.CachedInfo()
	e.Consumers = info.State.Consumers
	streamMax := info.Config.MaxConsumers
	accountMax := 0
	if ai, aerr := s.sess.js.AccountInfo(ctx); aerr == nil {
		accountMax = ai.Limits.MaxConsumers
		if t, ok := ai.Tiers["R1"]; ok && accountMax <= 0 { // watch consumers are R1
			accountMax = t.Limits.MaxConsumers
		}
	}
	switch {
	case accountMax > 0 && (streamMax <= 0 || accountMax < streamMax):
		e.Limit, e.Max = LimitAccount, accountMax
	case streamMax > 0:
		e.Limit, e.Max = LimitStream, streamMax
	default:
		e.Limit = LimitServerDefault
	}
	return e
}

// isConsumerLimit reports whether err is the server's refusal of a
// consumer for a consumer limit.
func isConsumerLimit(err error) bool {
	return apiCode(err) == codeMaxConsumers
}
