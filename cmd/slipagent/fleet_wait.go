package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/slipstreamkv/slipstream/fleet"
	"github.com/slipstreamkv/slipstream/kvcore"
)

const fleetWaitUsage = `usage: slipagent fleet wait (-revision R | -after-put -bucket B) [-fraction F] [-hosts N]
                           [-timeout D] [-bucket B] [-watch W] [-prefix P]

Blocks until every host that reports a watch (of bucket B, named W,
declaring prefix P) applied revision R, or at least fraction F of them, and
exits 0. -after-put takes for R the latest revision of bucket B when the
command starts: the change just written. -hosts N also waits until at
least N hosts report each watch (hosts still starting have not reported
yet). Without -timeout it waits for ever; on timeout it prints the hosts that have not applied R (how far
behind, since when, their state and error) and exits 6.

A report bucket that does not exist yet (no agent reported to it, or a
typo in -report-bucket) is waited for, and named on stderr at once.
A host counts until its record ages out of the report bucket (its report
max_age): one that went silent without applying R keeps the wait from
converging, and so does one that two agents report under (state conflict).
With -bucket and -revision, only the watches whose prefixes hold the key R
changed are waited for: the others never apply it (if the bucket no longer
holds R, every watch is); when hosts report watches of B but none holds
that key, nothing applies R: it says so and exits 0. -after-put waits for every watch of the bucket
(its last change may be another writer's): with watches of some prefixes
only, give -revision (the "rev N" of kv put) or -watch.
Exit codes: 0 converged, 2 bad command line, 3 the bucket -after-put names
does not exist, 4 NATS unreachable, 6 timed out.`

func runFleetWait(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("slipagent fleet wait", stderr)
	f := addFleetFlags(fs, addNATSServerFlags(fs))
	fs.Uint64Var(&f.query.Revision, "revision", 0, "the revision to wait for (\"rev N\" of kv put)")
	afterPut := fs.Bool("after-put", false, "wait for the latest revision of -bucket at the start")
	fraction := fs.Float64("fraction", 1, "converged once this fraction of the hosts applied the revision (0 < F ≤ 1)")
	timeout := fs.Duration("timeout", 0, "give up after this long (0: wait for ever)")
	poll := fs.Duration("poll", time.Second, "how often to read the reports")
	minHosts := fs.Int("hosts", 0, "converged only once at least this many hosts report each watch")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return parseFailed(fs, fleetWaitUsage, err, stdout, stderr)
	}
	err = f.check(pos)
	switch {
	case err != nil:
	case *afterPut == (f.query.Revision != 0):
		err = errors.New("give either -revision R or -after-put")
	case *afterPut && f.query.Bucket == "":
		err = errors.New("-after-put needs -bucket, the bucket written to")
	case *fraction <= 0 || *fraction > 1:
		err = fmt.Errorf("-fraction %v is not in (0, 1]", *fraction)
	case *poll <= 0 || *timeout < 0 || *minHosts < 0:
		err = errors.New("-poll must be positive, -timeout and -hosts not negative")
	}
	if err != nil {
		fmt.Fprintf(stderr, "slipagent fleet wait: %v\n\n", err)
		printUsage(stderr, fs, fleetWaitUsage)
		return exitUsage
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	r, err := f.open(ctx, "slipagent fleet wait")
	if err != nil {
		fmt.Fprintf(stderr, "slipagent fleet wait: %v\n", err)
		return connectExit(err)
	}
	defer r.Close()
	if *afterPut {
		if f.query.Revision, err = r.lastRevision(ctx, f.query.Bucket); err != nil {
			fmt.Fprintf(stderr, "slipagent fleet wait: bucket %s: %v\n", f.query.Bucket, err)
			return kvExitCode(err)
		}
		fmt.Fprintf(stdout, "waiting for revision %d of bucket %s\n", f.query.Revision, f.query.Bucket)
	} else {
		// Not after -after-put: the bucket's last change may be another
		// writer's, whose key would leave out watches that hold ours.
		f.scope(ctx, r, "slipagent fleet wait", stderr)
	}
	return waitConverged(ctx, r, f, convergence{*fraction, *minHosts}, *poll, stdout, stderr)
}

// convergence is what fleet wait waits for.
type convergence struct {
	fraction float64 // of the hosts reporting a watch that applied the revision
	hosts    int     // hosts that report each watch, at least
}

func (c convergence) reached(rep fleet.Report) bool {
	for _, w := range rep.Watches {
		if w.Hosts < c.hosts {
			return false
		}
	}
	return rep.Converged(c.fraction)
}

// waitConverged reads the reports every poll until the watches converged or
// ctx ends.
func waitConverged(ctx context.Context, r *fleetReader, f *fleetFlags, c convergence, poll time.Duration, stdout, stderr io.Writer) int {
	t := time.NewTicker(poll)
	defer t.Stop()
	var rep fleet.Report
	var readErr error
	noticed := false // that the report bucket does not exist
	read := false    // a read of the report bucket finished
	for {
		records, err := r.read(ctx)
		read = read || err == nil
		switch {
		case err == nil && uncovered(stdout, records, f.query):
			return exitOK
		case err == nil:
			rep, readErr = fleet.Aggregate(records, f.query), nil
			if c.reached(rep) {
				for _, w := range rep.Watches {
					fmt.Fprintf(stdout, "%s: %d of %d hosts applied revision %d\n", watchLabel(w), w.Applied, w.Hosts, w.Revision)
					for _, h := range w.PluginErrors {
						fmt.Fprintf(stdout, "%s: %s\n", watchLabel(w), hostLine(h, rep.Time))
					}
				}
				return exitOK
			}
		case ctx.Err() != nil:
			// The wait ended during the read, whose error says only that.
		case errors.Is(err, kvcore.ErrBucketNotFound):
			// No agent reported yet, or the bucket's name is wrong: said
			// once, at once, rather than only when the wait ends (if ever).
			if !noticed {
				noticed = true
				fmt.Fprintf(stderr, "slipagent fleet wait: report bucket %s does not exist yet: no agent has reported to it; waiting (agents report to the bucket of their report block, %q by default)\n", *f.reports, fleet.DefaultBucket)
			}
		default:
			readErr = err
			fmt.Fprintf(stderr, "slipagent fleet wait: %v (retrying)\n", err)
		}
		select {
		case <-ctx.Done():
			code, ended := exitTimeout, "timed out"
			if ctx.Err() == context.Canceled {
				code, ended = exitFailure, "interrupted"
			}
			fmt.Fprintf(stderr, "slipagent fleet wait: %s before the hosts applied revision %d\n", ended, f.query.Revision)
			switch {
			case !read && readErr == nil && !noticed:
				// The only read was cut short by the end of the wait.
				fmt.Fprintf(stderr, "slipagent fleet wait: no read of report bucket %s finished before the wait ended (is its server up?)\n", *f.reports)
			case readErr != nil && rep.Watches == nil:
				fmt.Fprintf(stderr, "slipagent fleet wait: %v\n", readErr)
			}
			if (read || noticed) && len(rep.Watches) == 0 {
				fmt.Fprintf(stdout, "no host reports such a watch to bucket %s\n", *f.reports)
			}
			for _, w := range rep.Watches {
				fmt.Fprintf(stdout, "%s: %d of %d hosts applied revision %d\n", watchLabel(w), w.Applied, w.Hosts, w.Revision)
				if w.Hosts < c.hosts {
					fmt.Fprintf(stdout, "%s: %d hosts report it, -hosts wants %d\n", watchLabel(w), w.Hosts, c.hosts)
				}
			}
			printProblems(stdout, rep)
			return code
		case <-t.C:
		}
	}
}
