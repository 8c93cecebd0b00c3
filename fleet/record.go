package fleet

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// DefaultBucket is the report bucket agents write to and the fleet commands
// read when none is named.
const DefaultBucket = "slipagent-fleet"

// Watch states a record carries: the agent's own (see agent.WatchStatus).
// Only StateReady is ready.
const (
	StateStarting = "starting"
	StateSyncing  = "syncing"
	StateReady    = "ready"
	StateFailing  = "failing"
	StateDetached = "detached"
	StateStale    = "stale"
	StateHeld     = "held"
)

// StateConflict is not a watch's state but the reporter's: another agent
// writes the same key (it reports under the same host name), so neither
// record can be trusted to describe this host's files. A record in it
// counts as failing and never as having applied a revision.
const StateConflict = "conflict"

// Record is what one host reports about one of its watches. Its JSON form
// is the value stored under [Key](Host, Watch) in the report bucket.
type Record struct {
	Host  string `json:"host"`
	Agent string `json:"agent,omitempty"` // the agent's version
	// Instance is a random id of the agent run that wrote the record (empty
	// in records of agents that predate it): two agents reporting under
	// the same host name tell their records apart by it.
	Instance string   `json:"instance,omitempty"`
	Watch    string   `json:"watch"`
	Bucket   string   `json:"bucket"`
	Prefixes []string `json:"prefixes,omitempty"`
	// Revision is the revision of the latest change in the watch's scope
	// that the host applied (plugin ran, files committed, hooks ran); 0
	// before the first one.
	Revision uint64 `json:"revision"`
	// State is the watch's state (StateReady, StateFailing, ...) and Error
	// why it is not ready.
	State string `json:"state"`
	Error string `json:"error,omitempty"`
	// PluginError is the lines the watch's plugin logged at error level
	// while applying the batch that brought it to Revision, joined by
	// "; " (those left out counted, "(and N more)"): the batch succeeded,
	// but the outputs may leave out what the lines name (values the plugin
	// could not render). Empty otherwise; at most 512 bytes and an
	// ellipsis.
	PluginError string `json:"plugin_error,omitempty"`
	// Since is when Revision last changed: when this agent run started,
	// if it has not changed since, unless the record an earlier run left
	// was at the same revision (its Since is kept).
	Since time.Time `json:"since"`
	// BehindSince is since when the watch has not been caught up with its
	// bucket (zero while it is): trailing it, failing, or applying a batch
	// for longer than Interval (a hook waiting for its min_interval).
	BehindSince time.Time `json:"behind_since,omitzero"`
	// Time is when the record was written; Interval is the host's heartbeat
	// interval: a record older than a few intervals comes from a host that
	// went silent.
	Time     time.Time `json:"time"`
	Interval Duration  `json:"interval"`
	// Stored is when the report bucket stored the record, by the server's
	// clock ([Read] sets it; zero when unknown). Silence is judged by it
	// when known, so a host whose own clock is off is not taken for
	// silent, nor a silent one for alive.
	Stored time.Time `json:"stored,omitzero"`
}

// Written is when the record was written: Stored if known, else the
// writer's Time.
func (r Record) Written() time.Time {
	if !r.Stored.IsZero() {
		return r.Stored
	}
	return r.Time
}

// Duration is a time.Duration that reads and writes as "30s" in JSON.
type Duration time.Duration

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Key is the report bucket key of host's record for watch. Host and watch
// are single key tokens (see [ValidHost]), so a host can be confined to its
// own keys with the NATS permission to publish on "$KV.<bucket>.<host>.>".
func Key(host, watch string) string { return host + "." + watch }

// ParseKey splits a report bucket key into host and watch.
func ParseKey(key string) (host, watch string, ok bool) {
	host, watch, ok = strings.Cut(key, ".")
	return host, watch, ok && ValidHost(host) && ValidHost(watch)
}

// ValidHost reports whether name can be a host id (or watch name) in a
// key: non-empty, ASCII letters, digits, - and _ only.
func ValidHost(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// HostID turns a host name into a host id: every character ValidHost
// refuses (the dots of "web1.example.com") becomes "_".
func HostID(hostname string) string {
	b := []byte(hostname)
	for i, c := range b {
		if !ValidHost(string(c)) {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "unknown"
	}
	return string(b)
}

// Decode parses the record stored under key. The key names the host and
// watch: a record claiming another host is refused, so a host allowed to
// write only its own keys cannot speak for another.
func Decode(key string, value []byte) (Record, error) {
	host, watch, ok := ParseKey(key)
	if !ok {
		return Record{}, fmt.Errorf("fleet: key %q is not <host>.<watch>", key)
	}
	var r Record
	if err := json.Unmarshal(value, &r); err != nil {
		return Record{}, fmt.Errorf("fleet: record %s: %w", key, err)
	}
	if r.Host != host || r.Watch != watch {
		return Record{}, fmt.Errorf("fleet: record %s names host %q, watch %q", key, r.Host, r.Watch)
	}
	return r, nil
}
