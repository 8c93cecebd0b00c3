package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/slipstreamkv/slipstream/agent"
)

const statusUsage = `usage: slipagent status [-addr HOST:PORT]

Prints the state of every watch of a running agent, from its http listener,
then why each watch that is not ready is not (failing, detached, stale,
held). Exits 1 unless every watch is ready.`

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("slipagent status", stderr)
	addr := fs.String("addr", "127.0.0.1:9464", "the agent's http listen address (default: that of a \"slipagent dev\" running with ./dev-out, else 127.0.0.1:9464)")
	if err := fs.Parse(args); err != nil {
		return parseFailed(fs, statusUsage, err, stdout, stderr)
	}
	if d, ok := runningDev(); ok && d.HTTP != "" && !flagSet(fs, "addr") {
		*addr = d.HTTP
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+*addr+"/status", nil)
	if err != nil {
		fmt.Fprintf(stderr, "slipagent status: %v\n", err)
		return exitUsage
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "slipagent status: %v\n", err)
		return exitFailure
	}
	defer resp.Body.Close()
	var st struct {
		Ready   bool                `json:"ready"`
		Watches []agent.WatchStatus `json:"watches"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		fmt.Fprintf(stderr, "slipagent status: bad answer from %s: %v\n", *addr, err)
		return exitFailure
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WATCH\tBUCKET\tSTATE\tREVISION\tBATCHES\tFAILURES\tLAST ERROR")
	for _, w := range st.Watches {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", w.Name, w.Bucket, w.State, w.Revision, w.Batches, w.Failures, w.LastError)
	}
	tw.Flush()
	for _, w := range st.Watches {
		if !w.Ready && w.Reason != "" {
			fmt.Fprintf(stdout, "%s: %s\n", w.Name, w.Reason)
		}
		if w.Held != nil {
			fmt.Fprintf(stdout, "%s: held since %s: %d of %d keys would be removed\n", w.Name, w.Held.Since.Format(time.RFC3339), w.Held.Removals, w.Held.KeysBefore)
		}
	}
	if !st.Ready {
		return exitFailure
	}
	return exitOK
}
