package agent

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/slipstreamkv/slipstream/fleet"
	"github.com/slipstreamkv/slipstream/kvcore"
)

// Two agents configured with the same report host (short host names repeat
// across datacenters) write the same keys of the report bucket, and the
// fleet would read whichever wrote last: a failing host hidden behind a
// healthy one. So the reporter writes its keys with compare-and-set, as one
// agent run (its instance id, in every record):
//
//   - its first write of a key creates it. If the key exists, the record
//     there decides: one written by another run before this one started is
//     an earlier run of this agent (restarted) and is taken over; one
//     written after it started comes from another agent reporting now.
//   - later writes update the revision it wrote last. A mismatch means
//     someone else wrote the key since: another agent (an earlier run of
//     this one is gone), unless the record there is this run's own (a
//     write whose reply was lost).
//
// On a conflict the reporter logs an error (at most once per interval),
// counts it (slipagent_report_conflicts_total), shows it in /status
// ("report") and marks its record of that key with state conflict, which
// the fleet counts as failing and not applied, then writes it anyway: both
// agents' records then carry the conflict, whichever the fleet reads. It
// ends once no write conflicted for conflictSilence heartbeat intervals
// (the other agent's or this one's, the longer).

// conflictSilence is how many heartbeat intervals without a conflicting
// write end a conflict: as many as make a host silent in the fleet.
const conflictSilence = fleet.DefaultSilentAfter

// ReportStatus is the fleet reporter's part of /status ("report").
type ReportStatus struct {
	Bucket string `json:"bucket"`
	Host   string `json:"host"`
	// Instance is this agent run's id, in every record it writes.
	Instance string `json:"instance"`
	// LastWrite is when a record was last written (zero before the
	// first). Error is why the reports cannot be written, since
	// FailingSince; empty while they can.
	LastWrite    time.Time `json:"last_write,omitzero"`
	Error        string    `json:"error,omitempty"`
	FailingSince time.Time `json:"failing_since,omitzero"`
	// Conflicts lists the keys another agent writes too (it reports under
	// the same host name), by key.
	Conflicts []ReportConflict `json:"conflicts,omitempty"`
}

// ReportConflict is a key of the report bucket that another agent writes
// too.
type ReportConflict struct {
	Key   string `json:"key"`
	Watch string `json:"watch"`
	// Instance is the other agent run's id ("" when its record did not say
	// or could not be read).
	Instance string `json:"instance"`
	// Since is when this run of the conflict began, Last when a write last
	// found the key written by the other agent.
	Since time.Time `json:"since"`
	Last  time.Time `json:"last"`

	until time.Time // it ends when no write conflicted until then
}

// ReportStatus returns what the fleet reporter does (nil without a report
// block).
func (a *Agent) ReportStatus() *ReportStatus {
	r := a.fleet
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st := &ReportStatus{Bucket: r.conf.Bucket, Host: r.conf.Host, Instance: r.instance,
		LastWrite: r.lastWrite, Error: r.failure, FailingSince: r.failingSince}
	for _, key := range slices.Sorted(maps.Keys(r.conflictsByKey)) {
		st.Conflicts = append(st.Conflicts, *r.conflictsByKey[key])
	}
	return st
}

// write stores plain, marked with the conflict over key if one is going on,
// under key with compare-and-set (see above), and returns the record
// written: marked also with a conflict found on the way.
func (r *fleetReporter) write(ctx context.Context, key string, plain fleet.Record, now time.Time) (fleet.Record, error) {
	rec := r.marked(key, plain, now)
	for range 3 { // a key that ages out, or is taken over, between two calls
		value, err := json.Marshal(rec)
		if err != nil {
			return rec, err
		}
		ver, known := r.vers[key]
		wctx, cancel := context.WithTimeout(ctx, r.timeout)
		var v kvcore.Version
		if known {
			v, err = r.store.Update(wctx, key, value, ver)
		} else {
			v, err = r.store.Create(wctx, key, value)
		}
		cancel()
		switch {
		case err == nil:
			r.vers[key] = v
			return rec, nil
		case !errors.Is(err, kvcore.ErrAlreadyExists) && !errors.Is(err, kvcore.ErrRevisionMismatch):
			delete(r.vers, key) // it may have been written: the next write finds out
			return rec, err
		}
		there, thereVer, err := r.read(ctx, key)
		switch {
		case err == nil && thereVer.IsUnknown():
			delete(r.vers, key) // aged out meanwhile: create it
			continue
		case err == nil && there.Instance == r.instance:
			r.vers[key] = thereVer // a write of ours whose reply was lost
			continue
		case !known && (err != nil || !there.Time.After(r.started)):
			// An earlier run of this agent, or one that stopped before
			// this one started: take its key over. (Without the
			// permission to read the key, a plain put does.)
			if err == nil {
				r.vers[key] = thereVer
				rec = r.takeOver(rec, there)
				plain.Since = rec.Since
				continue
			}
			if !r.readWarned {
				r.readWarned = true
				r.a.log.Warn("cannot read the report key to tell an earlier run of this agent from another agent reporting under the same host name; taking it over (allow reading it: see the README's report permissions)",
					"key", key, "err", err)
			}
		default:
			// Written after this run started, or after its own write.
			if err != nil {
				there = fleet.Record{}
			}
			rec = r.conflict(key, plain, there, now)
		}
		wctx, cancel = context.WithTimeout(ctx, r.timeout)
		if value, err = json.Marshal(rec); err == nil {
			v, err = r.store.Put(wctx, key, value)
		}
		cancel()
		if err != nil {
			delete(r.vers, key)
			return rec, err
		}
		r.vers[key] = v
		return rec, nil
	}
	return rec, errors.New("the key keeps changing under this agent's writes")
}

// takeOver notes the record an earlier run of this agent left for rec's
// watch (see fleetReporter.earlier) and returns rec with its Since, and
// the error its plugin logged applying that revision, when the watch is
// still at that revision (this run applied nothing since: a batch moves
// the revision).
func (r *fleetReporter) takeOver(rec, there fleet.Record) fleet.Record {
	if there.Watch != rec.Watch || there.Since.IsZero() {
		return rec
	}
	r.earlier[rec.Watch] = fleet.Record{Revision: there.Revision, Since: there.Since}
	if there.Revision == rec.Revision {
		rec.PluginError = cmp.Or(rec.PluginError, there.PluginError)
		if there.Since.Before(rec.Since) {
			rec.Since = there.Since
			r.revs[rec.Watch] = fleet.Record{Revision: rec.Revision, Since: there.Since}
		}
	}
	return rec
}

// read returns the record under key and its version (unknown when the key
// does not exist). A value that is not a record reads as one with no
// instance, written at no time.
func (r *fleetReporter) read(ctx context.Context, key string) (fleet.Record, kvcore.Version, error) {
	rctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	e, err := r.store.Get(rctx, key)
	if errors.Is(err, kvcore.ErrNotFound) {
		return fleet.Record{}, kvcore.Version{}, nil
	}
	if err != nil {
		return fleet.Record{}, kvcore.Version{}, fmt.Errorf("reading report key %s: %w", key, err)
	}
	rec, _ := fleet.Decode(key, e.Value)
	return rec, e.Version, nil
}

// conflict records that another agent (the writer of there) writes key,
// and returns rec marked with it.
func (r *fleetReporter) conflict(key string, rec, there fleet.Record, now time.Time) fleet.Record {
	r.conflictWrites.Inc()
	interval := max(r.conf.Interval, time.Duration(there.Interval))
	r.mu.Lock()
	c := r.conflictsByKey[key]
	if c == nil {
		c = &ReportConflict{Key: key, Watch: rec.Watch, Since: now}
		r.conflictsByKey[key] = c
	}
	c.Instance, c.Last, c.until = there.Instance, now, now.Add(conflictSilence*interval)
	r.mu.Unlock()
	if now.Sub(r.conflictLogged) >= r.conf.Interval {
		r.conflictLogged = now
		r.a.log.Error("another agent reports under the same host name, so the fleet cannot tell this host's state; give each agent its own report { host = \"…\" }",
			"host", r.conf.Host, "key", key, "bucket", r.conf.Bucket, "instance", r.instance, "other_instance", cmp.Or(there.Instance, "unknown"))
	}
	return r.marked(key, rec, now)
}

// marked returns rec marked with the conflict over key, if one is going
// on; it ends a conflict whose time is up.
func (r *fleetReporter) marked(key string, rec fleet.Record, now time.Time) fleet.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.conflictsByKey[key]
	if c == nil {
		return rec
	}
	if now.After(c.until) {
		delete(r.conflictsByKey, key)
		r.a.log.Info("no other agent wrote the report key lately: the conflict is over", "key", key, "bucket", r.conf.Bucket)
		return rec
	}
	msg := fmt.Sprintf("host name %s is also reported by another agent (instance %s)", r.conf.Host, cmp.Or(c.Instance, "unknown"))
	if rec.Error != "" {
		msg += fmt.Sprintf("; this agent's watch is %s: %s", rec.State, rec.Error)
	}
	rec.State, rec.Error = fleet.StateConflict, msg
	return rec
}
