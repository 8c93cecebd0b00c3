package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/slipstreamkv/slipstream/agent"
	"github.com/slipstreamkv/slipstream/plugins/host"
)

const validateUsage = `usage: slipagent validate [-config PATH] [-modules=false]

Checks a configuration: syntax, types, references between blocks, the
NATS server URLs, that the NATS credentials and TLS files (ca_file,
cert_file, key_file) can be read and parse, that the users and groups it
names exist, that no file the agent trusts (the configuration, data dir,
compile cache, creds, keys, token) can be changed by others, as the agent
checks at start, that data_dir is a directory it can list (or does not
exist yet), that the http token and TLS files can be read; it warns
about a hook whose splay and min_interval reach its watch's stale_after.
Unless -modules=false (as the systemd unit's start runs it: a missing
hook program fails only that hook, not the agent's start), it also
checks that each hook's command and check given by path is an
executable file (a bare name missing from this shell's PATH is only
warned about) and that every plugin module loads: it compiles, matches
its sha256 pin, speaks the plugin ABI and accepts its
configuration (a plugin that checks it when loaded, as the template
example does, refuses it here, naming the plugin), and that a render of
an empty bucket by each watch's plugin names only outputs and hooks the
watch declares (a hook or output named in the plugin's configuration but
missing from the watch; other failures of that render are left to plan,
which renders the real bucket).`

func runValidate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("slipagent validate", stderr)
	path := fs.String("config", defaultConfig, "configuration file, or directory of *.hcl files")
	modules := fs.Bool("modules", true, "also load every plugin module and check the hook programs")
	if code, ok := parseFlagsOnly(fs, validateUsage, args, stdout, stderr); !ok {
		return code
	}
	cfg, code := loadConfig(*path, stderr)
	if cfg == nil {
		return code
	}
	a, err := agent.New(cfg, agent.Options{Logger: slog.New(slog.NewTextHandler(stderr, nil))})
	if err != nil {
		fmt.Fprintf(stderr, "slipagent validate: %v\n", err)
		return exitFailure
	}
	if err := a.CheckTrust(); err != nil { // the agent would refuse to start
		fmt.Fprintf(stderr, "slipagent validate: %v\n", err)
		return exitFailure
	}
	if err := a.CheckCreds(); err != nil { // and so it would
		fmt.Fprintf(stderr, "slipagent validate: %v\n", err)
		return exitFailure
	}
	if err := a.CheckTLS(); err != nil { // and so it would
		fmt.Fprintf(stderr, "slipagent validate: %v\n", err)
		return exitFailure
	}
	if err := a.CheckHTTP(); err != nil { // it could not serve http
		fmt.Fprintf(stderr, "slipagent validate: %v\n", err)
		return exitFailure
	}
	warnHookWaits(cfg, stderr)
	if *modules {
		failed := !checkPrograms(cfg, stderr)
		eng, err := host.New(ctx, host.Config{})
		if err != nil {
			fmt.Fprintf(stderr, "slipagent validate: %v\n", err)
			return exitFailure
		}
		defer eng.Close(context.WithoutCancel(ctx))
		for _, p := range cfg.Plugins {
			at := fmt.Sprintf("%s:%d", p.DefRange.Filename, p.DefRange.Start.Line) // the plugin block
			wasm, err := os.ReadFile(p.Module)
			if err != nil {
				fmt.Fprintf(stderr, "%s: plugin %q: %v\n", at, p.Name, err)
				failed = true
				continue
			}
			pl, err := eng.Load(ctx, wasm, host.PluginConfig{Name: p.Name, SHA256: p.SHA256, MemoryLimit: uint64(p.Memory), Timeout: p.Timeout, Config: p.ConfigMap})
			if err != nil { // host errors name the plugin
				fmt.Fprintf(stderr, "%s: %s: %v\n", at, p.Module, err)
				failed = true
				continue
			}
			for _, w := range cfg.Watches {
				if w.Plugin != p.Name {
					continue
				}
				err := checkDeclared(ctx, pl, w)
				if err == nil {
					continue
				}
				failed = true
				at := fmt.Sprintf("%s:%d: watch %q", w.DefRange.Filename, w.DefRange.Start.Line, w.Name)
				ue, ok := errors.AsType[*host.UndeclaredError](err)
				if !ok {
					fmt.Fprintf(stderr, "%s: %v\n", at, err)
					continue
				}
				verb := map[string]string{"hook": "requests hook", "output": "writes to output"}[ue.Kind]
				fmt.Fprintf(stderr, "%s: plugin %q %s %s, which the watch does not declare (seen in a render of an empty bucket): declare it in the watch, or change the plugin's configuration\n",
					at, p.Name, verb, ue.Name)
			}
			pl.Close(ctx)
		}
		if failed {
			return exitFailure
		}
	}
	fmt.Fprintf(stdout, "%s: ok (%s, %s)\n", *path, count(len(cfg.Watches), "watch", "watches"), count(len(cfg.Plugins), "plugin", "plugins"))
	return exitOK
}

// warnHookWaits warns about a hook whose splay and min_interval can hold a
// batch as long as its watch's stale_after: the watch would turn stale
// (503) whenever changes come while the hook waits for its turn.
func warnHookWaits(cfg *agent.Config, stderr io.Writer) {
	for _, w := range cfg.Watches {
		for _, h := range w.Hooks {
			if wait := h.Splay + h.MinInterval; w.StaleAfter > 0 && wait > 0 && wait >= w.StaleAfter {
				fmt.Fprintf(stderr, "%s:%d: watch %q, hook %q: warning: a batch may wait up to %v for this hook (splay + min_interval), not less than the watch's stale_after (%v): the watch turns stale (503) while it waits; raise stale_after\n",
					h.DefRange.Filename, h.DefRange.Start.Line, w.Name, h.Name, wait, w.StaleAfter)
			}
		}
	}
}

// checkPrograms checks that every hook's command and check program can
// run: one given by path is an executable file (false and a line naming
// it otherwise); a bare name not found in PATH is only warned about, as
// the agent's PATH (a systemd unit's) may not be this shell's.
func checkPrograms(cfg *agent.Config, stderr io.Writer) bool {
	ok := true
	for _, w := range cfg.Watches {
		for _, h := range w.Hooks {
			for _, p := range []struct {
				what string
				argv []string
				at   hcl.Range
			}{{"command", h.Command, h.CommandRange}, {"check", h.Check, h.CheckRange}} {
				if len(p.argv) == 0 {
					continue
				}
				at := fmt.Sprintf("%s:%d: watch %q, hook %q", p.at.Filename, p.at.Start.Line, w.Name, h.Name)
				prog := p.argv[0]
				if !strings.ContainsRune(prog, filepath.Separator) {
					if _, err := exec.LookPath(prog); err != nil {
						fmt.Fprintf(stderr, "%s: warning: %s program %q is not in this shell's PATH (the agent's may differ)\n", at, p.what, prog)
					}
					continue
				}
				fi, err := os.Stat(prog)
				switch {
				case err != nil:
					fmt.Fprintf(stderr, "%s: %s program: %v\n", at, p.what, err)
				case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
					fmt.Fprintf(stderr, "%s: %s program %s is not an executable file (mode %v)\n", at, p.what, prog, fi.Mode())
				default:
					continue
				}
				ok = false
			}
		}
	}
	return ok
}

// checkDeclared renders an empty bucket with watch w's outputs in scratch
// directories. It returns the render's *host.UndeclaredError if it named an
// output or hook w does not declare, and nil for any other outcome of the
// render (plan, which renders the real bucket, reports those); an instance
// that cannot be made for w, as the agent would make it, is an error too.
func checkDeclared(ctx context.Context, pl *host.Plugin, w *agent.WatchConf) error {
	scratch, err := os.MkdirTemp("", "slipagent-validate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	outputs := map[string]host.Output{}
	for _, o := range w.Outputs {
		dir := filepath.Join(scratch, o.Name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		outputs[o.Name] = host.Output{Dir: dir}
	}
	hooks := make([]string, len(w.Hooks))
	for i, h := range w.Hooks {
		hooks[i] = h.Name
	}
	inst, err := pl.NewInstance(ctx, host.InstanceConfig{Watch: w.Name, Outputs: outputs, Hooks: hooks})
	if err != nil {
		return err
	}
	defer inst.Close(context.WithoutCancel(ctx))
	res, err := inst.Render(ctx, host.Cursor{}, host.NewMemView())
	if ue, ok := errors.AsType[*host.UndeclaredError](err); ok {
		return ue
	}
	if err == nil {
		res.Discard()
	}
	return nil
}
