package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/slipstreamkv/slipstream/fleet"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/natskv"
)

const fleetUsage = `usage: slipagent fleet <command> [flags]

commands:
  status   how many hosts applied a revision; which lag, fail, are held or
           went silent (exit 1 unless every host applied it and is ready)
  wait     block until the hosts applied a revision (-revision R or
           -after-put), or time out naming the laggards (exit 6)
  serve    serve a live rollout page (hosts × watches, lag histogram)

The fleet commands read the records that agents with a report block write
to the report bucket (default "slipagent-fleet"). A host's record is its
applied revision and state per watch; hosts that stop reporting age out of
the bucket after its max age. Run 'slipagent fleet <command> -h' for a
command's flags.

Rollout: put, wait, inspect:
  rev=$(slipagent kv put routes upstream.web.s1 '{"address": "10.0.0.7:8080"}' | cut -d' ' -f2)
  slipagent fleet wait -bucket routes -revision "$rev" -timeout 5m
  slipagent fleet status -bucket routes -revision "$rev"`

func runFleet(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, fleetUsage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, fleetUsage)
		return exitOK
	case "status":
		return runFleetStatus(ctx, args[1:], stdout, stderr)
	case "wait":
		return runFleetWait(ctx, args[1:], stdout, stderr)
	case "serve":
		return runFleetServe(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "slipagent fleet: unknown command %q\n\n%s\n", args[0], fleetUsage)
	return exitUsage
}

// fleetFlags are the flags every fleet command shares: where the reports
// are and which watches to look at.
type fleetFlags struct {
	nats    natsFlags
	reports *string
	query   fleet.Query
}

func addFleetFlags(fs *flag.FlagSet, nf natsFlags) *fleetFlags {
	f := &fleetFlags{nats: nf}
	f.reports = fs.String("report-bucket", fleet.DefaultBucket, "the bucket the agents report to (their report { bucket })")
	fs.StringVar(&f.query.Bucket, "bucket", "", "only watches of this bucket")
	fs.StringVar(&f.query.Watch, "watch", "", "only watches of this name")
	fs.StringVar(&f.query.Prefix, "prefix", "", "only watches that declare this prefix")
	fs.IntVar(&f.query.SilentAfter, "silent-after", fleet.DefaultSilentAfter, "heartbeat intervals without a record before a host counts as silent")
	return f
}

// check validates the shared flags (and that no argument is left) before
// connecting.
func (f *fleetFlags) check(pos []string) error {
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	if !kvcore.ValidBucket(*f.reports) {
		return fmt.Errorf("-report-bucket %q is not a bucket name", *f.reports)
	}
	if f.query.Bucket != "" && !kvcore.ValidBucket(f.query.Bucket) {
		return fmt.Errorf("-bucket %q is not a bucket name", f.query.Bucket)
	}
	return nil
}

// fleetReader reads the reports through one connection.
type fleetReader struct {
	conn    *natskv.Conn
	name    string // report bucket
	reports kvcore.Store
}

func (f *fleetFlags) open(ctx context.Context, cmd string) (*fleetReader, error) {
	conn, err := f.nats.connect(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return &fleetReader{conn: conn, name: *f.reports}, nil
}

func (r *fleetReader) Close() { r.conn.Close() }

// read lists the records; a report bucket that does not exist yet (no
// agent reported) fails with kvcore.ErrBucketNotFound.
func (r *fleetReader) read(ctx context.Context) ([]fleet.Record, error) {
	if r.reports == nil {
		s, err := r.conn.Open(ctx, r.name)
		if err != nil {
			return nil, fmt.Errorf("report bucket %s: %w", r.name, err)
		}
		r.reports = s
	}
	records, _, err := fleet.Read(ctx, r.reports)
	return records, err
}

// revisions is what the NATS backend tells of a bucket's revisions.
type revisions interface {
	LastRevision(context.Context) (uint64, error)
	KeyAt(context.Context, uint64) (string, error)
}

// revisions opens bucket to ask about its revisions.
func (r *fleetReader) revisions(ctx context.Context, bucket string) (revisions, error) {
	s, err := r.conn.Open(ctx, bucket)
	if err != nil {
		return nil, err
	}
	rv, ok := s.(revisions)
	if !ok {
		return nil, errors.New("the backend cannot tell a bucket's revisions")
	}
	return rv, nil
}

// lastRevision is the latest revision of bucket (for -after-put).
func (r *fleetReader) lastRevision(ctx context.Context, bucket string) (uint64, error) {
	rv, err := r.revisions(ctx, bucket)
	if err != nil {
		return 0, err
	}
	return rv.LastRevision(ctx)
}

// scope narrows f's query, when it names a bucket and a revision, to the
// watches whose prefixes hold the key of that revision's change: the others
// never apply it. When that key cannot be read (a later change of the key
// replaced it, or no permission), it says so on stderr and every watch is
// judged by the revision.
func (f *fleetFlags) scope(ctx context.Context, r *fleetReader, cmd string, stderr io.Writer) {
	q := &f.query
	if q.Revision == 0 || q.Bucket == "" {
		return
	}
	rv, err := r.revisions(ctx, q.Bucket)
	var key string
	if err == nil {
		key, err = rv.KeyAt(ctx, q.Revision)
	}
	switch {
	case err == nil:
		q.Key = key
	case errors.Is(err, kvcore.ErrNotFound):
		if last, lerr := rv.LastRevision(ctx); lerr == nil && last < q.Revision {
			fmt.Fprintf(stderr, "%s: bucket %s is at revision %d: revision %d is not written yet, and every watch of the bucket is judged by it\n", cmd, q.Bucket, last, q.Revision)
			return
		}
		fmt.Fprintf(stderr, "%s: bucket %s no longer holds revision %d (a later change of its key replaced it, or it aged out): watches whose prefixes may not hold it are judged by it too\n", cmd, q.Bucket, q.Revision)
	default:
		fmt.Fprintf(stderr, "%s: cannot read the key of revision %d (%v): watches whose prefixes may not hold it are judged by it too\n", cmd, q.Revision, err)
	}
}

// uncovered reports whether, for a query narrowed to the key of its
// revision (see scope), hosts report watches of its bucket but none whose
// prefixes hold that key: no host ever applies that change, and waiting
// for it would never end. It says so on w.
func uncovered(w io.Writer, records []fleet.Record, q fleet.Query) bool {
	if q.Key == "" {
		return false
	}
	any := q
	any.Key = ""
	if len(fleet.Aggregate(records, q).Watches) > 0 || len(fleet.Aggregate(records, any).Watches) == 0 {
		return false
	}
	fmt.Fprintf(w, "revision %d of bucket %s changed key %s, which no reported watch's prefixes hold: no host applies it\n", q.Revision, q.Bucket, q.Key)
	return true
}

// printProblems prints, per watch, the hosts that lag, fail, are held or
// went silent, most behind first, then those whose plugin logged an error
// applying their revision.
func printProblems(w io.Writer, rep fleet.Report) {
	for _, wr := range rep.Watches {
		seen := map[string]bool{}
		for _, list := range [][]fleet.HostState{wr.Laggards, wr.Failing, wr.Held, wr.Silent, wr.PluginErrors} {
			for _, h := range list {
				if seen[h.Host] {
					continue
				}
				seen[h.Host] = true
				fmt.Fprintf(w, "%s: %s\n", watchLabel(wr), hostLine(h, rep.Time))
			}
		}
	}
}

// watchLabel names a watch as "routes (bucket cfg)".
func watchLabel(w fleet.WatchReport) string {
	s := w.Watch + " (bucket " + w.Bucket
	if len(w.Prefixes) > 0 {
		s += ", prefixes " + strings.Join(w.Prefixes, ",")
	}
	return s + ")"
}

// hostLine describes a host that is not done, or whose plugin logged an
// error applying its revision: "h3 at revision 40 since 12:00:01Z (2
// behind, behind its bucket since 12:03:10Z), failing: hook reload: exit
// status 1".
func hostLine(h fleet.HostState, now time.Time) string {
	s := fmt.Sprintf("%s at revision %d since %s", h.Host, h.Revision, h.Since.UTC().Format(time.RFC3339))
	var behind []string
	if h.Lag > 0 {
		behind = append(behind, fmt.Sprintf("%d behind", h.Lag))
	}
	if !h.BehindSince.IsZero() {
		behind = append(behind, "behind its bucket since "+h.BehindSince.UTC().Format(time.RFC3339))
	}
	if len(behind) > 0 {
		s += " (" + strings.Join(behind, ", ") + ")"
	}
	s += ", " + h.State
	if h.Error != "" {
		s += ": " + h.Error
	}
	if h.Silent {
		s += fmt.Sprintf("; silent for %v", now.Sub(h.Written()).Round(time.Second))
	}
	if h.PluginError != "" {
		s += "; its plugin logged an error applying it: " + h.PluginError
	}
	return s
}
