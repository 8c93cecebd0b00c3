package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/slipstreamkv/slipstream/fleet"
)

const fleetStatusUsage = `usage: slipagent fleet status [-json] [-bucket B] [-watch W] [-prefix P] [-revision R]

Prints, for each watch the hosts report (of bucket B, named W, declaring
prefix P), how many hosts applied revision R (default: the highest revision
any host reports for the watch) and how many are ready, then one line per
host that has not applied it, fails, is held or went silent: its revision,
since when, how far behind and why; and one per host whose plugin logged
an error applying its revision (it applied it, but its outputs may leave
out what the error names). With -bucket and -revision, only the
watches whose prefixes hold the key R changed are judged: the others never
apply it (if the bucket no longer holds R, every watch is; if none holds
it, it says so and exits 0). -json prints the whole aggregation.
Exits 0 when every host applied R and is ready, 1 otherwise (or when no
host reports), 3 when the report bucket does not exist, 4 when NATS cannot
be reached.`

func runFleetStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("slipagent fleet status", stderr)
	f := addFleetFlags(fs, addNATSFlags(fs))
	asJSON := fs.Bool("json", false, "print the aggregation as JSON")
	fs.Uint64Var(&f.query.Revision, "revision", 0, "the revision the hosts should have applied (default: the highest reported)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return parseFailed(fs, fleetStatusUsage, err, stdout, stderr)
	}
	if err := f.check(pos); err != nil {
		fmt.Fprintf(stderr, "slipagent fleet status: %v\n\n", err)
		printUsage(stderr, fs, fleetStatusUsage)
		return exitUsage
	}
	r, err := f.open(ctx, "slipagent fleet status")
	if err != nil {
		fmt.Fprintf(stderr, "slipagent fleet status: %v\n", err)
		return connectExit(err)
	}
	defer r.Close()
	f.scope(ctx, r, "slipagent fleet status", stderr)
	records, err := r.read(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "slipagent fleet status: %v\n", err)
		return kvExitCode(err)
	}
	nothing := uncovered(stderr, records, f.query)
	rep := fleet.Aggregate(records, f.query)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return exitFailure
		}
	} else {
		printFleetStatus(stdout, rep)
	}
	if nothing {
		return exitOK
	}
	if len(rep.Watches) == 0 {
		fmt.Fprintf(stderr, "slipagent fleet status: no host reports such a watch to bucket %s\n", *f.reports)
		return exitFailure
	}
	for _, w := range rep.Watches {
		if !w.Converged(1) || w.Ready < w.Hosts || len(w.Silent) > 0 {
			return exitFailure
		}
	}
	return exitOK
}

func printFleetStatus(w io.Writer, rep fleet.Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WATCH\tBUCKET\tREVISION\tHOSTS\tAPPLIED\tREADY\tLAGGING\tFAILING\tHELD\tSILENT")
	for _, r := range rep.Watches {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", r.Watch, r.Bucket, r.Revision, r.Hosts, r.Applied, r.Ready,
			len(r.Laggards), len(r.Failing), len(r.Held), len(r.Silent))
	}
	tw.Flush()
	printProblems(w, rep)
}
