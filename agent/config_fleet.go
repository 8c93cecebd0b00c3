package agent

import (
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/slipstreamkv/slipstream/kvcore/natskv"
)

// Fleet defaults of the nats block.
const (
	// DefaultStartSplay: an agent started alone connects at once; a fleet
	// restarted together sets start_splay.
	DefaultStartSplay = 0
	// DefaultReconnectJitter spreads a fleet's return after an outage.
	DefaultReconnectJitter = natskv.DefaultReconnectJitter
	// DefaultPingInterval: a silent server (a frozen host, a cut link) is
	// left within 10–15 s.
	DefaultPingInterval = natskv.DefaultPingInterval
)

// finalizeFleet parses the nats block's fleet settings: start_splay and
// reconnect_jitter are durations, "0s" (or "0") for none; ping_interval
// is a positive duration.
func (n *NATSConfig) finalizeFleet(diags hcl.Diagnostics) hcl.Diagnostics {
	n.StartSplay, diags = parseDelay("start_splay", n.StartSplayS, n.StartSplayRange, DefaultStartSplay, diags)
	n.ReconnectJitter, diags = parseDelay("reconnect_jitter", n.ReconnectJitterS, n.ReconnectJitterRange, DefaultReconnectJitter, diags)
	n.PingInterval, diags = parseDelay("ping_interval", n.PingIntervalS, n.PingIntervalRange, DefaultPingInterval, diags)
	if n.PingInterval == 0 {
		diags = append(diags, errAt(n.PingIntervalRange, "Invalid ping_interval", "ping_interval must be above zero: the pings are how a silent server is noticed."))
	}
	return diags
}

// parseDelay reads a duration that may be zero.
func parseDelay(name, s string, rng hcl.Range, def time.Duration, diags hcl.Diagnostics) (time.Duration, hcl.Diagnostics) {
	if s == "" {
		return def, diags
	}
	if s == "0" {
		return 0, diags
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return def, append(diags, errAt(rng, "Invalid "+name, fmt.Sprintf("%q is not a duration such as \"0s\", \"500ms\" or \"5s\".", s)))
	}
	return d, diags
}

// natsJitter is the natskv setting for reconnect_jitter, where 0 means none.
func (n *NATSConfig) natsJitter() time.Duration {
	if n.ReconnectJitter == 0 {
		return -1
	}
	return n.ReconnectJitter
}
