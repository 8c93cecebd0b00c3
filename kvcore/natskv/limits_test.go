package natskv

import (
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
)

// A watch refused for the consumer limit fails with a ConsumerLimitError
// that names the limit the server applied and what to change.
func TestConsumerLimitErrorNamesTheLimit(t *testing.T) {
	account := natstest.Operator(t, func(l *jwt.JetStreamLimits) { l.Consumer = 1 })
	for _, tc := range []struct {
		name      string
		opts      []natstest.Option
		creds     []byte
		streamMax int
		want      ConsumerLimit
		wantMax   int
		remedy    string
	}{
		{"stream", nil, nil, 1, LimitStream, 1, "--max-consumers"},
		{"server default", []natstest.Option{func(o *server.Options) { o.JetStreamLimits.DefaultMaxConsumers = 1 }}, nil, 0, LimitServerDefault, 0, "jetstream.limits.default_max_consumers"},
		{"account", []natstest.Option{account.Option}, account.Creds, 0, LimitAccount, 1, "account's JetStream max_consumers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := natstest.Run(t, tc.opts...)
			o := fastOpts(srv.URL())
			if tc.creds != nil {
				o.Creds = base64Std(tc.creds)
			}
			c := connect(t, o)
			s := openStore(t, c, kvcore.StoreConfig{})
			mustPut(t, s, "k", "v")
			if tc.streamMax > 0 {
				js, err := jetstream.New(c.NATS())
				if err != nil {
					t.Fatal(err)
				}
				st, err := js.Stream(testCtx(t), s.stream)
				if err != nil {
					t.Fatal(err)
				}
				cfg := st.CachedInfo().Config
				cfg.MaxConsumers = tc.streamMax
				if _, err := js.UpdateStream(testCtx(t), cfg); err != nil {
					t.Fatal(err)
				}
			}
			first, err := s.Watch(testCtx(t), kvcore.AllKeys(), kvcore.Cursor{})
			if err != nil {
				t.Fatal(err)
			}
			defer first.Stop()

			_, err = s.Watch(testCtx(t), kvcore.AllKeys(), kvcore.Cursor{})
			var le *ConsumerLimitError
			if !errors.As(err, &le) {
				t.Fatalf("second watch: err = %v, want a ConsumerLimitError", err)
			}
			if !errors.Is(err, kvcore.ErrWatchFailed) {
				t.Errorf("err = %v, want it to wrap kvcore.ErrWatchFailed", err)
			}
			if le.Limit != tc.want || le.Max != tc.wantMax || le.Consumers != 1 || le.Stream != s.stream {
				t.Errorf("limit %v max %d consumers %d stream %s, want %v max %d, 1 consumer of %s", le.Limit, le.Max, le.Consumers, le.Stream, tc.want, tc.wantMax, s.stream)
			}
			for _, part := range []string{"maximum consumers limit reached", tc.remedy, "mirrored bucket per region", "leaf nodes"} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("message %q does not say %q", err, part)
				}
			}
			if _, err := s.Keys(testCtx(t), ""); !errors.As(err, &le) {
				t.Errorf("Keys at the limit: err = %v, want a ConsumerLimitError", err)
			}
		})
	}
}
