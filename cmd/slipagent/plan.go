package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"

	"github.com/slipstreamkv/slipstream/agent"
)

const planUsage = `usage: slipagent plan [-config PATH] [-watch NAME]... [-detailed-exitcode]

Shows what "slipagent once" would do, changing nothing: for each watch, it
runs the plugin on the changes pending since the watch's checkpoint (on the
whole bucket for a fresh data_dir) on private copies of the fold and the
outputs and, as once's drift check does, renders the watch again when an
output file the agent wrote was changed or removed outside it. It runs the
hooks' checks on the result and prints a unified diff per output file
("Binary files ... differ" for binary ones; a file the drift repair restores
comes after a "drift repair:" line saying how it was changed) and the hooks
that would run. An in-place check that a crash interrupted (check.pending)
is undone first, as once does: an "interrupted check:" line names each file
put back as it was before the batch, which is checked again (a running
agent's check in place has that journal too, while it runs: plan then
shows it as interrupted). Nothing is committed nor
checkpointed: the fold, the state files and the outputs are left as they
are, and a running agent is not disturbed; but a fold = "disk" watch cannot
be planned while an agent runs (it holds that fold open): stop it, or name
the other watches with -watch. Checks with check_in_place are
not run (they would change the live files); the deletion guard is not
consulted.

Exits 0 on success (changes or not), like terraform plan; with
-detailed-exitcode, 0 means no changes and 2 changes present (a file to
write, restore or remove, or a hook to run). Errors: 1 (a plugin or check
failed, or an output could not be checked for drift), 4 (no NATS server
could be reached).`

// exitChanges is plan's exit code, with -detailed-exitcode, when there are
// changes (terraform's convention).
const exitChanges = 2

func runPlan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("slipagent plan", stderr)
	path := fs.String("config", defaultConfig, "configuration file, or directory of *.hcl files")
	var watches multiFlag
	fs.Var(&watches, "watch", "plan only this watch (repeatable)")
	detailed := fs.Bool("detailed-exitcode", false, "exit 2 when there are changes, 0 when there are none")
	if code, ok := parseFlagsOnly(fs, planUsage, args, stdout, stderr); !ok {
		return code
	}
	cfg, code := loadConfig(*path, stderr)
	if cfg == nil {
		return code
	}
	level := new(slog.LevelVar)
	level.Set(max(cfg.Level, slog.LevelWarn)) // the plan is the output; logs only for trouble
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	a, err := agent.New(cfg, agent.Options{Logger: logger})
	if err != nil {
		fmt.Fprintf(stderr, "slipagent plan: %v\n", err)
		return exitFailure
	}
	changed, checkFailed := false, false
	err = a.Plan(ctx, watches, func(p *agent.WatchPlan) error {
		changed = changed || p.Changed()
		failed, err := printPlan(stdout, p)
		checkFailed = checkFailed || failed
		return err
	})
	switch {
	case errors.Is(err, agent.ErrUnreachable):
		fmt.Fprintf(stderr, "slipagent plan: %v\n", err)
		return exitUnreachable
	case err != nil:
		fmt.Fprintf(stderr, "slipagent plan: %v\n", err)
		return exitFailure
	case checkFailed:
		return exitFailure
	case changed && *detailed:
		return exitChanges
	}
	return exitOK
}

// printPlan prints one watch's plan; failed reports a failed check (of a
// hook, or for drift).
func printPlan(w io.Writer, p *agent.WatchPlan) (failed bool, err error) {
	switch {
	case p.Full:
		fmt.Fprintf(w, "watch %s: full render at revision %d\n", p.Watch, p.To)
	case p.Updates > 0:
		fmt.Fprintf(w, "watch %s: %s, revision %d to %d\n", p.Watch, count(p.Updates, "update", "updates"), p.From, p.To)
	default:
		fmt.Fprintf(w, "watch %s: up to date at revision %d\n", p.Watch, p.To)
	}
	for _, t := range p.Restored {
		fmt.Fprintf(w, "  interrupted check: %s goes back to what it held before the batch, which is checked again\n", t)
	}
	for _, f := range p.Files {
		var old, new []byte
		oldName, newName := f.Target, f.Target
		old, err := os.ReadFile(f.Target)
		if errors.Is(err, os.ErrNotExist) {
			oldName = "/dev/null"
		} else if err != nil {
			return false, err
		}
		if f.Remove {
			newName = "/dev/null"
		} else if new, err = os.ReadFile(f.New); err != nil {
			return false, err
		}
		if f.Drift != "" {
			fmt.Fprintf(w, "  drift repair: %s was changed outside the agent (%s)\n", f.Target, f.Drift)
		}
		if !f.Remove {
			modeDiff(w, f.Target, f.Target, f.New)
		}
		unifiedDiff(w, oldName, newName, old, new)
	}
	if !p.Changed() {
		fmt.Fprintln(w, "  no changes")
	}
	refused := slices.IndexFunc(p.Checks, func(c agent.PlannedCheck) bool { return c.Err != nil && !c.Ignored })
	for _, h := range p.Hooks {
		if refused >= 0 {
			fmt.Fprintf(w, "  hook %s would not run: the check of hook %s fails, which keeps the old files\n", h, p.Checks[refused].Hook)
			continue
		}
		fmt.Fprintf(w, "  hook %s would run\n", h)
	}
	if p.DriftUnchecked != nil {
		fmt.Fprintf(w, "  drift check: FAILED: %v\n", p.DriftUnchecked)
		failed = true
	}
	for _, c := range p.Checks {
		switch {
		case c.NotRun != "":
			fmt.Fprintf(w, "  check of hook %s: not run (%s)\n", c.Hook, c.NotRun)
		case c.Err != nil && c.Ignored:
			fmt.Fprintf(w, "  check of hook %s: FAILED, ignored (on_failure = \"ignore\": the files would go live anyway): %v\n", c.Hook, c.Err)
		case c.Err != nil:
			fmt.Fprintf(w, "  check of hook %s: FAILED: %v\n", c.Hook, c.Err)
			failed = true
		default:
			fmt.Fprintf(w, "  check of hook %s: ok\n", c.Hook)
		}
	}
	return failed, nil
}
