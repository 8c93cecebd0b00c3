package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/slipstreamkv/slipstream/fleet"
	"github.com/slipstreamkv/slipstream/internal/atomicfile"
)

// reportedFile, in data_dir, names the watches whose records this agent
// keeps in the report bucket, so that a restart without some of them (the
// configuration changed while the agent was stopped) deletes their
// records, as a reload that removes a watch does, instead of leaving them
// to count in the fleet, never applying anything, until they age out.
// Listing the host's keys in the bucket instead would need a consumer on
// it, a permission hosts need not have.
const reportedFile = "report-watches.json"

// reportedWatches is reportedFile's content: the watches reported, and
// the bucket, domain and host they were reported as (a record elsewhere
// is not this agent's to delete: it ages out).
type reportedWatches struct {
	Bucket  string   `json:"bucket"`
	Domain  string   `json:"domain,omitempty"`
	Host    string   `json:"host"`
	Watches []string `json:"watches"`
}

// adoptReported makes the watches an earlier run reported, and this one
// does not run, owed a delete: forget removes their records (an empty
// record in sent stands for one; adopted marks it as an earlier run's).
// A file that is missing, unreadable, or of another bucket, domain or host
// adopts nothing.
func (r *fleetReporter) adoptReported() {
	b, err := os.ReadFile(filepath.Join(r.a.config().DataDir, reportedFile))
	if err != nil {
		return
	}
	var rw reportedWatches
	if json.Unmarshal(b, &rw) != nil || rw.Bucket != r.conf.Bucket || rw.Domain != r.conf.Domain || rw.Host != r.conf.Host {
		return
	}
	configured := r.a.config().Watches
	for _, name := range rw.Watches {
		if _, ok := r.sent[name]; !ok && !slices.ContainsFunc(configured, func(w *WatchConf) bool { return w.Name == name }) {
			r.sent[name] = fleet.Record{}
			r.adopted[name] = true
		}
	}
}

// mayForget reports whether the record of an adopted watch is still the
// earlier run's to delete: one written since this run started is another
// agent's, reporting under the same host name (a key that cannot be read
// is deleted, as before this check).
func (r *fleetReporter) mayForget(ctx context.Context, key string) bool {
	there, _, err := r.read(ctx, key)
	return err != nil || !there.Time.After(r.started)
}

// noteReported saves the names of the watches whose records may be in the
// bucket (those of sent, and every configured watch, which is about to
// be) when they changed since the last save (a reload, or forget). A failure is logged once
// until a save succeeds, and tried again after maxReportRetry.
func (r *fleetReporter) noteReported(now time.Time) {
	set := map[string]bool{}
	for name := range r.sent {
		set[name] = true
	}
	for _, w := range r.a.config().Watches {
		set[w.Name] = true
	}
	names := slices.Sorted(maps.Keys(set))
	if r.savedOnce && slices.Equal(names, r.saved) || now.Before(r.saveRetryAt) {
		return
	}
	b, err := json.Marshal(reportedWatches{Bucket: r.conf.Bucket, Domain: r.conf.Domain, Host: r.conf.Host, Watches: names})
	if err == nil {
		err = atomicfile.WriteFile(filepath.Join(r.a.config().DataDir, reportedFile), b, 0o600)
	}
	if err != nil {
		if !r.saveWarned {
			r.saveWarned = true
			r.a.log.Warn("cannot record which watches this agent reports; a restart without one of them leaves its record until it ages out", "err", fmt.Errorf("%s: %w", reportedFile, err))
		}
		r.saveRetryAt = now.Add(maxReportRetry)
		return
	}
	r.saved, r.savedOnce, r.saveWarned = names, true, false
}
