package natskv

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// consumerSpec describes one ephemeral push consumer on a bucket's stream:
// ordered delivery without acks, flow-controlled, with idle heartbeats, kept
// in memory on one replica (it is re-created rather than recovered).
type consumerSpec struct {
	filters     []string // at least one
	startSeq    uint64   // 0: the last record of every key, then new ones
	headersOnly bool
	pauseUntil  time.Time // tests only: the consumer sends nothing before
}

func (s *store) consumerConfig(spec consumerSpec, name, inbox string) jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		Name:              name,
		Description:       "slipstream",
		DeliverSubject:    inbox,
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		MaxDeliver:        1,
		ReplayPolicy:      jetstream.ReplayInstantPolicy,
		FlowControl:       true,
		IdleHeartbeat:     s.opts.Heartbeat,
		HeadersOnly:       spec.headersOnly,
		InactiveThreshold: max(2*s.opts.Heartbeat, 5*time.Second),
		Replicas:          1,
		MemoryStorage:     true,
	}
	if spec.startSeq > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = spec.startSeq
	}
	if !spec.pauseUntil.IsZero() {
		cfg.PauseUntil = &spec.pauseUntil
	}
	if len(spec.filters) == 1 {
		cfg.FilterSubject = spec.filters[0]
	} else {
		cfg.FilterSubjects = spec.filters
	}
	return cfg
}

// createConsumer creates the consumer and returns what the server said of
// it: how many messages it has pending and, in a cluster, which server
// hosts it. A consumer limit fails with a *ConsumerLimitError. The caller
// subscribes to inbox first, so nothing is missed.
func (s *store) createConsumer(ctx context.Context, spec consumerSpec, name, inbox string) (*jetstream.ConsumerInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	c, err := s.sess.js.CreatePushConsumer(ctx, s.stream, s.consumerConfig(spec, name, inbox))
	if isConsumerLimit(err) {
		return nil, s.consumerLimitError(ctx, err)
	}
	if err != nil {
		return nil, err
	}
	return c.CachedInfo(), nil
}

// drop has the session's reaper delete consumer name, which nothing reads
// anymore (or whose creation failed: the request may have reached the
// server anyway).
func (s *store) drop(name string) { s.sess.reaper.drop(s.stream, name) }

func newConsumerName() string { return "slip_" + nuid.Next() }

// streamState is what a watch or scan needs to know about the stream.
type streamState struct {
	first, last uint64    // first retained sequence and last sequence
	lastTime    time.Time // when the record at last was stored
	msgs        uint64    // records retained
	history     int64     // records kept per key
	// lossy: the stream's limits drop records that nothing supersedes
	// (discard old, max age).
	lossy bool
	// created tells incarnations of the bucket apart: a stream deleted
	// and created again starts its revisions over.
	created time.Time
	// leader is the server leading the stream in a cluster, else "".
	leader string
	// maxAge and markerTTL are the bucket's expiry and the delete-marker
	// TTL that makes an expiry visible to watches (0: none).
	maxAge, markerTTL time.Duration
}

// streamState looks the bucket's stream up.
func (s *store) streamState(ctx context.Context) (streamState, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	st, err := s.sess.js.Stream(ctx, s.stream)
	if err != nil {
		return streamState{}, err
	}
	info := st.CachedInfo()
	cfg := info.Config
	limited := cfg.MaxBytes > 0 || cfg.MaxMsgs > 0
	return streamState{
		first:     info.State.FirstSeq,
		last:      info.State.LastSeq,
		lastTime:  info.State.LastTime,
		msgs:      info.State.Msgs,
		history:   cfg.MaxMsgsPerSubject,
		lossy:     cfg.MaxAge > 0 || cfg.Discard == jetstream.DiscardOld && limited,
		created:   info.Created,
		leader:    clusterLeader(info.Cluster),
		maxAge:    cfg.MaxAge,
		markerTTL: cfg.SubjectDeleteMarkerTTL,
	}, nil
}

// clusterLeader is the leader named by a stream's or consumer's cluster
// information, or "" outside a cluster.
func clusterLeader(ci *jetstream.ClusterInfo) string {
	if ci == nil {
		return ""
	}
	return ci.Leader
}
