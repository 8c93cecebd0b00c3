package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slipstreamkv/slipstream/agent"
)

const statusUsage = `usage: slipagent status [-config PATH | -http ADDR] [-token-file FILE] [-ca-file FILE -cert-file FILE -key-file FILE]

Prints the state of every watch of a running agent, from its http listener,
then why each watch that is not ready is not (failing, detached, stale,
held), a refused reload, fleet reports that cannot be written, and another
agent reporting to the fleet under the same host name. Exits 1 unless every
watch is ready.

The listener, its token and whether it is https come from the agent's
configuration (-config, default ` + defaultConfig + ` if it exists), or from
-http (HOST:PORT, https://HOST:PORT or unix:PATH) and -token-file, which win.
Without either, status asks the agent of a "slipagent dev" running with
./dev-out, else the one ` + defaultConfig + ` configures, else ` + defaultHTTP + `.`

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("slipagent status", stderr)
	var ef endpointFlags
	ef.register(fs)
	if code, ok := parseFlagsOnly(fs, statusUsage, args, stdout, stderr); !ok {
		return code
	}
	var h *agent.HTTPConfig
	path := ef.configPath()
	if path != "" {
		cfg, code := loadConfig(path, stderr)
		if cfg == nil {
			// It finds the agent through the configuration, which a reload
			// of this one was refused for: say how to ask the agent.
			fmt.Fprintf(stderr, "slipagent status: %s does not load, so the running agent (which keeps the configuration it last loaded) is not found through it: give its address with -http ADDR (and -token-file FILE)\n", path)
			return code
		}
		h = cfg.HTTP
	}
	ep, err := ef.resolve(h, path)
	if err != nil {
		fmt.Fprintf(stderr, "slipagent status: %v\n", err)
		if errors.Is(err, errBadHTTPFlag) {
			return exitUsage
		}
		return exitFailure
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := ep.get(ctx, "/status")
	if err != nil {
		fmt.Fprintf(stderr, "slipagent status: %v\n", err)
		return exitFailure
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		fmt.Fprintf(stderr, "slipagent status: %s answered %s: %s\n", ep.base, resp.Status, strings.TrimSpace(string(body)))
		if resp.StatusCode == http.StatusUnauthorized {
			fmt.Fprintln(stderr, "slipagent status: "+ep.unauthorized())
		}
		return exitFailure
	}
	var st struct {
		Ready   bool                `json:"ready"`
		Watches []agent.WatchStatus `json:"watches"`
		Reload  *agent.ReloadStatus `json:"reload"`
		Report  *agent.ReportStatus `json:"report"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		fmt.Fprintf(stderr, "slipagent status: bad answer from %s: %v\n", ep.base, err)
		return exitFailure
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WATCH\tBUCKET\tSTATE\tREVISION\tBATCHES\tFAILURES\tLAST ERROR")
	for _, w := range st.Watches {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", w.Name, w.Bucket, w.State, w.Revision, w.Batches, w.Failures, w.LastError)
	}
	tw.Flush()
	for _, w := range st.Watches {
		// A failing watch's reason is its last error, already in the
		// table: only what the reason adds to it follows.
		if reason, shown := strings.CutPrefix(w.Reason, w.LastError); w.LastError != "" && shown {
			if reason != "" {
				fmt.Fprintf(stdout, "%s: %s%s\n", w.Name, w.State, reason)
			}
		} else if !w.Ready && w.Reason != "" {
			fmt.Fprintf(stdout, "%s: %s: %s\n", w.Name, w.State, w.Reason)
		}
		if l := w.PluginLog; l != nil && l.Errors > 0 {
			fmt.Fprintf(stdout, "%s: its plugin logged %s since the watch started, the last at %s: %s\n",
				w.Name, count(int(l.Errors), "error", "errors"), l.LastErrorAt.Format(time.RFC3339), l.LastError)
		}
		if w.Held != nil {
			fmt.Fprintf(stdout, "%s: held since %s: %d of %d %s would be removed\n", w.Name, w.Held.Since.Format(time.RFC3339), w.Held.Removals, w.Held.KeysBefore, w.Held.Unit())
		}
	}
	if r := st.Reload; r != nil && r.LastError != "" {
		fmt.Fprintf(stdout, "last reload refused at %s (the running configuration stays): %s\n", r.LastAt.Format(time.RFC3339), r.LastError)
	}
	if r := st.Report; r != nil {
		if r.Error != "" {
			fmt.Fprintf(stdout, "fleet report (bucket %s): not written since %s (the watches are not affected): %s\n", r.Bucket, r.FailingSince.Format(time.RFC3339), r.Error)
		}
		for _, c := range r.Conflicts {
			fmt.Fprintf(stdout, "fleet report %s (bucket %s): host name %s is also reported by another agent (instance %s) since %s: give each agent its own report { host = \"…\" }\n",
				c.Key, r.Bucket, r.Host, cmp.Or(c.Instance, "unknown"), c.Since.Format(time.RFC3339))
		}
	}
	if !st.Ready {
		return exitFailure
	}
	return exitOK
}
