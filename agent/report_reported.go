package agent

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/slipstreamkv/slipstream/fleet"
	"github.com/slipstreamkv/slipstream/internal/atomicfile"
)

// reportedFile, in data_dir, names the watches whose records this agent
// last kept in the report bucket, so that a restart without some of them
// (the configuration changed while the agent was stopped) deletes their
// records, as a reload that removes a watch does, instead of leaving them
// to count in the fleet, never applying anything, until they age out.
// Listing the host's keys in the bucket instead would need a consumer on
// it, a permission hosts need not have.
const reportedFile = "report-watches.json"

// reportedWatches is reportedFile's content: the watches reported, and
// the bucket and host they were reported as (a record elsewhere is not
// this agent's to delete).
type reportedWatches struct {
	Bucket  string   `json:"bucket"`
	Host    string   `json:"host"`
	Watches []string `json:"watches"`
}

// loadReported reads the watches an earlier run reported to bucket as host
// (none when the file is missing, unreadable, or for another bucket or
// host: a record left then ages out, as before this file existed).
func loadReported(dataDir, bucket, host string) []string {
	b, err := os.ReadFile(filepath.Join(dataDir, reportedFile))
	if err != nil {
		return nil
	}
	var rw reportedWatches
	if json.Unmarshal(b, &rw) != nil || rw.Bucket != bucket || rw.Host != host {
		return nil
	}
	return rw.Watches
}

// saveReported records the watches whose records are in the bucket now
// (the keys of sent).
func saveReported(dataDir, bucket, host string, watches []string) error {
	b, err := json.Marshal(reportedWatches{Bucket: bucket, Host: host, Watches: watches})
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dataDir, reportedFile), b, 0o600); err != nil {
		return fmt.Errorf("recording the reported watches: %w", err)
	}
	return nil
}

// adoptReported makes the watches an earlier run reported, and this one
// does not run, owed a delete: forget removes their records (an empty
// record in sent stands for one).
func (r *fleetReporter) adoptReported() {
	for _, name := range loadReported(r.a.cfg.DataDir, r.conf.Bucket, r.conf.Host) {
		if _, ok := r.sent[name]; !ok && !slices.ContainsFunc(r.a.cfg.Watches, func(w *WatchConf) bool { return w.Name == name }) {
			r.sent[name] = fleet.Record{}
		}
	}
}

// noteReported saves the names of sent when they changed since the last
// save. A failure is logged once until a save succeeds, and tried again at
// the next tick.
func (r *fleetReporter) noteReported() {
	names := slices.Sorted(maps.Keys(r.sent))
	if r.savedOnce && slices.Equal(names, r.saved) {
		return
	}
	if err := saveReported(r.a.cfg.DataDir, r.conf.Bucket, r.conf.Host, names); err != nil {
		if !r.saveWarned {
			r.saveWarned = true
			r.a.log.Warn("cannot record which watches this agent reports; a restart without one of them leaves its record until it ages out", "err", err)
		}
		return
	}
	r.saved, r.savedOnce, r.saveWarned = names, true, false
}
