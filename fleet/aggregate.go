package fleet

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultSilentAfter is how many heartbeat intervals a host may miss before
// it counts as silent.
const DefaultSilentAfter = 3

// defaultInterval stands in for the interval of a record that names none.
const defaultInterval = 30 * time.Second

// Query selects the records to aggregate and the revision to judge them by.
// The zero value takes every record and, for each watch, the highest
// revision a host reported.
type Query struct {
	Bucket string // only watches of this bucket ("" = every bucket)
	Watch  string // only watches of this name ("" = every watch)
	// Prefix keeps only watches that declare this prefix ("" = any).
	Prefix string
	// Key keeps only watches whose scope holds this key: those without
	// prefixes, and those with a prefix the key starts with ("" = any).
	// Set it to the key of the change at Revision: a watch whose prefixes
	// do not hold that change never applies it.
	Key string
	// Revision is the revision every host should have applied; 0 takes,
	// per watch, the highest revision any host reported.
	Revision uint64
	// SilentAfter is how many heartbeat intervals without a record make a
	// host silent (default DefaultSilentAfter).
	SilentAfter int
	// Now is the time to judge silence at (default time.Now()).
	Now time.Time
}

// Report is the state of a fleet: one WatchReport per watch (name, bucket
// and prefixes) that some host reports, sorted by bucket then watch.
type Report struct {
	Time    time.Time     `json:"time"`
	Watches []WatchReport `json:"watches"`
}

// WatchReport is how far the hosts that run one watch got.
type WatchReport struct {
	Watch    string   `json:"watch"`
	Bucket   string   `json:"bucket"`
	Prefixes []string `json:"prefixes,omitempty"`
	// Revision is the revision the hosts are judged by.
	Revision uint64 `json:"revision"`
	// Hosts counts the hosts reporting this watch; Applied those whose
	// revision is at least Revision (and not in conflict), Ready those
	// whose watch is ready and that are not silent.
	Hosts   int `json:"hosts"`
	Applied int `json:"applied"`
	Ready   int `json:"ready"`
	// Laggards have not applied Revision, most behind first. Failing
	// (failing, detached, stale or conflict), Held and Silent name the
	// hosts in those states, whatever their revision. A host in conflict
	// (two agents report under its name) never counts as Applied.
	Laggards []HostState `json:"laggards"`
	Failing  []HostState `json:"failing"`
	Held     []HostState `json:"held"`
	Silent   []HostState `json:"silent"`
	// PluginErrors names the hosts whose plugin logged an error applying
	// the batch that brought them to their revision (Record.PluginError):
	// they count as Applied, but their outputs may leave something out.
	PluginErrors []HostState `json:"plugin_errors"`
	// All lists every host, sorted by name.
	All []HostState `json:"all"`
	// Lags is the distribution of lag (Revision minus the host's revision).
	Lags []Bin `json:"lags"`
}

// HostState is one host's record with what the aggregation made of it.
type HostState struct {
	Record
	// Lag is how many revisions the host is behind the WatchReport's
	// Revision (0 once it applied it).
	Lag uint64 `json:"lag"`
	// Silent is true when the host has not written its record for
	// SilentAfter heartbeat intervals.
	Silent bool `json:"silent"`
}

// Bin is one bar of the lag histogram: Count hosts lag by Min to Max
// revisions.
type Bin struct {
	Label string `json:"label"`
	Min   uint64 `json:"min"`
	Max   uint64 `json:"max"`
	Count int    `json:"count"`
}

// Converged reports whether at least fraction (0 < fraction ≤ 1) of the
// hosts reporting the watch applied its Revision. A watch no host reports
// has not converged.
func (w WatchReport) Converged(fraction float64) bool {
	return w.Hosts > 0 && w.Applied >= needed(w.Hosts, fraction)
}

// needed is how many of n hosts make fraction of them.
func needed(n int, fraction float64) int {
	return max(1, int(math.Ceil(fraction*float64(n)-1e-9)))
}

// Converged reports whether every watch of the report converged, and the
// report has at least one.
func (r Report) Converged(fraction float64) bool {
	for _, w := range r.Watches {
		if !w.Converged(fraction) {
			return false
		}
	}
	return len(r.Watches) > 0
}

// Aggregate judges records by q. It runs in time linear in the number of
// records (plus sorting each watch's hosts).
func Aggregate(records []Record, q Query) Report {
	if q.Now.IsZero() {
		q.Now = time.Now()
	}
	if q.SilentAfter <= 0 {
		q.SilentAfter = DefaultSilentAfter
	}
	groups := map[string]*WatchReport{}
	for _, r := range records {
		if q.Bucket != "" && r.Bucket != q.Bucket || q.Watch != "" && r.Watch != q.Watch ||
			q.Prefix != "" && !slices.Contains(r.Prefixes, q.Prefix) || q.Key != "" && !holds(r.Prefixes, q.Key) {
			continue
		}
		id := r.Bucket + "\x00" + r.Watch + "\x00" + strings.Join(r.Prefixes, "\x00")
		g := groups[id]
		if g == nil {
			g = &WatchReport{Watch: r.Watch, Bucket: r.Bucket, Prefixes: r.Prefixes}
			groups[id] = g
		}
		interval := time.Duration(r.Interval)
		if interval <= 0 {
			interval = defaultInterval
		}
		g.All = append(g.All, HostState{Record: r, Silent: q.Now.Sub(r.Written()) > time.Duration(q.SilentAfter)*interval})
		g.Revision = max(g.Revision, r.Revision)
	}
	rep := Report{Time: q.Now, Watches: make([]WatchReport, 0, len(groups))}
	for _, g := range groups {
		if q.Revision != 0 {
			g.Revision = q.Revision
		}
		g.judge()
		rep.Watches = append(rep.Watches, *g)
	}
	slices.SortFunc(rep.Watches, func(a, b WatchReport) int {
		return cmp.Or(cmp.Compare(a.Bucket, b.Bucket), cmp.Compare(a.Watch, b.Watch),
			slices.Compare(a.Prefixes, b.Prefixes))
	})
	return rep
}

// holds reports whether a watch with prefixes (none: every key) sees key.
func holds(prefixes []string, key string) bool {
	if len(prefixes) == 0 {
		return true
	}
	return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(key, p) })
}

// judge fills in a watch's counts, lists and histogram from All.
func (g *WatchReport) judge() {
	g.All = sortedHosts(g.All, func(a, b *HostState) int { return cmp.Compare(a.Host, b.Host) })
	g.Hosts = len(g.All)
	g.Laggards, g.Failing, g.Held, g.Silent, g.PluginErrors = []HostState{}, []HostState{}, []HostState{}, []HostState{}, []HostState{}
	var counts [65]int // by bit length of the lag: 0, 1, 2-3, 4-7, ...
	top := 0
	for i := range g.All {
		h := &g.All[i]
		switch {
		case h.Revision < g.Revision:
			h.Lag = g.Revision - h.Revision
			g.Laggards = append(g.Laggards, *h)
		case h.State != StateConflict: // its revision may be another agent's
			g.Applied++
		}
		switch h.State {
		case StateReady:
			if !h.Silent { // its last word, not what it is now
				g.Ready++
			}
		case StateFailing, StateDetached, StateStale, StateConflict:
			g.Failing = append(g.Failing, *h)
		case StateHeld:
			g.Held = append(g.Held, *h)
		}
		if h.Silent {
			g.Silent = append(g.Silent, *h)
		}
		if h.PluginError != "" {
			g.PluginErrors = append(g.PluginErrors, *h)
		}
		b := bits.Len64(h.Lag)
		counts[b]++
		top = max(top, b)
	}
	g.Laggards = sortedHosts(g.Laggards, func(a, b *HostState) int { return cmp.Compare(b.Lag, a.Lag) })
	g.Lags = make([]Bin, top+1)
	for b := range g.Lags {
		lo, hi := uint64(0), uint64(0)
		if b > 0 {
			lo, hi = 1<<(b-1), 1<<b-1
		}
		label := strconv.FormatUint(lo, 10)
		if hi > lo {
			label += "–" + strconv.FormatUint(hi, 10)
		}
		g.Lags[b] = Bin{Label: label, Min: lo, Max: hi, Count: counts[b]}
	}
}

// sortedHosts returns hosts stably sorted by compare. It sorts indices and
// copies each HostState once: sorting the (large) structs themselves moves
// each of them many times, which dominated aggregating 10,000 hosts.
func sortedHosts(hosts []HostState, compare func(a, b *HostState) int) []HostState {
	idx := make([]int32, len(hosts))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortStableFunc(idx, func(a, b int32) int { return compare(&hosts[a], &hosts[b]) })
	out := make([]HostState, len(hosts))
	for i, j := range idx {
		out[i] = hosts[j]
	}
	return out
}
