package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/slipstreamkv/slipstream/agent"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/natskv"
)

const devUsage = `usage: slipagent dev [-dir DIR] [-plugins DIR] [-port N] [-http ADDR] [-nats-only]

Runs the whole pipeline on this machine with no setup: an embedded NATS server
with JetStream (its data in DIR/nats), example buckets seeded with sample
configuration, the example plugins (built into -plugins by "make plugins"), and
an agent that renders them into DIR/out. Change a key with "slipagent kv" and
watch the files follow. The generated configuration is DIR/agent.hcl.

When 4222 or 9464 is taken, dev picks free ports and records them in
DIR/dev.json: "slipagent kv" (without -server or $NATS_URL) and "slipagent
status" (without -addr), run from the directory holding dev-out, use them
while dev runs. -nats-only runs the server and seeds the buckets without the
agent, so that "slipagent once -config DIR/agent.hcl" (or run, or plan) can
show an agent catching up with what changed while it was stopped.`

// devWatch is one watch of the dev configuration and the example plugin it
// runs. Optional ones (the C example needs clang) are left out when their
// module is missing.
type devWatch struct {
	plugin   string // module name in -plugins, without .wasm
	optional bool
	config   string // the plugin's config attribute, HCL
	watch    string
	bucket   string
	prefix   string
	output   string // output name; its dir is out/<watch>
	hook     string // hook name
	what     string // what the hook stands in for, for hooks.log
	check    bool   // run check.sh before committing
}

var devWatches = []devWatch{
	{plugin: "nginx-upstreams", watch: "nginx", bucket: "routes", prefix: "upstream.", output: "conf", hook: "reload", what: "nginx reload", check: true},
	{plugin: "files", config: `{ prefix = "files.", hook = "changed" }`, watch: "files", bucket: "app", prefix: "files.", output: "files", hook: "changed", what: "files changed"},
	{plugin: "template", config: `{
    prefix   = "app."
    path     = "app.conf"
    template = <<-EOT
      # rendered by slipagent at revision {{ .Revision }}
      {{- range .Entries }}
      {{ trimPrefix "app." .Key }} = {{ .Value }}
      {{- end }}
    EOT
  }`, watch: "template", bucket: "app", prefix: "app.", output: "out", hook: "reload", what: "app reload"},
	{plugin: "envfile", optional: true, config: `{ prefix = "env.", path = "app.env", hook = "restart" }`, watch: "env", bucket: "app", prefix: "env.", output: "env", hook: "restart", what: "app restart"},
}

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("slipagent dev", stderr)
	dir := fs.String("dir", defaultDevDir, "where the server's data, the agent's state and the outputs go")
	plugins := fs.String("plugins", "bin/plugins", "directory holding the example plugin modules")
	port := fs.Int("port", 4222, "NATS port (0, or when it is taken: a free one)")
	httpAddr := fs.String("http", "127.0.0.1:9464", "the agent's /metrics, /healthz, /readyz and /status (a free port is picked if it is taken)")
	natsOnly := fs.Bool("nats-only", false, "run the NATS server (seeded, and the configuration written) but no agent")
	if code, ok := parseFlagsOnly(fs, devUsage, args, stdout, stderr); !ok {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "slipagent dev: %v\n", err)
		return exitFailure
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return fail(err)
	}
	modules, err := filepath.Abs(*plugins)
	if err != nil {
		return fail(err)
	}
	var have []devWatch
	for _, w := range devWatches {
		_, err := os.Stat(filepath.Join(modules, w.plugin+".wasm"))
		switch {
		case err == nil:
			have = append(have, w)
		case !w.optional:
			return fail(fmt.Errorf("plugin module %s: %w (build the examples with \"make plugins\")", w.plugin, err))
		}
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return fail(err)
	}
	lock, err := lockDevDir(abs)
	if err != nil {
		return fail(err)
	}
	defer lock.Close()

	srv, err := startDevServer(filepath.Join(abs, "nats"), *port)
	if err != nil {
		return fail(err)
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	url := srv.ClientURL()
	if err := seedDev(ctx, url); err != nil {
		return fail(err)
	}
	listen := freeAddr(*httpAddr)
	if err := writeDevScripts(abs); err != nil {
		return fail(err)
	}
	cfgPath := filepath.Join(abs, "agent.hcl")
	if err := os.WriteFile(cfgPath, []byte(devConfig(abs, modules, url, listen, have)), 0o644); err != nil {
		return fail(err)
	}
	cfg, code := loadConfig(cfgPath, stderr)
	if cfg == nil {
		return code
	}
	addrs := devAddrs{PID: os.Getpid(), NATS: url}
	if !*natsOnly {
		addrs.HTTP = listen
	}
	forget, err := writeDevFile(abs, addrs)
	if err != nil {
		return fail(err)
	}
	defer forget()
	printDevBanner(stdout, abs, cfgPath, addrs, *natsOnly)
	if *natsOnly {
		<-ctx.Done()
		return exitOK
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.Level}))
	a, err := agent.New(cfg, agent.Options{Logger: logger, Version: currentVersion().String()})
	if err != nil {
		return fail(err)
	}
	if err := a.Run(ctx); err != nil {
		return fail(err)
	}
	return exitOK
}

// printDevBanner says where everything is and what to try. The commands
// need no -server nor -addr when dev runs in ./dev-out (they find
// dev.json); with another -dir they name the addresses.
func printDevBanner(w io.Writer, dir, cfgPath string, addrs devAddrs, natsOnly bool) {
	kvFlag, statusFlag := "", ""
	if cwd, err := os.Getwd(); err != nil || filepath.Join(cwd, defaultDevDir) != dir {
		kvFlag, statusFlag = " -server "+addrs.NATS, " -addr "+addrs.HTTP
	}
	fmt.Fprintf(w, "slipagent dev\n  NATS          %s (JetStream data in %s/nats)\n  config        %s\n", addrs.NATS, dir, cfgPath)
	if natsOnly {
		fmt.Fprintf(w, `  no agent (-nats-only)

Try, in another terminal:
  bin/slipagent kv%[1]s put app files.motd.txt 'changed while no agent ran'
  bin/slipagent plan -config %[2]s    # what an agent would change
  bin/slipagent once -config %[2]s    # catch up with it, then exit
Ctrl-C stops.

`, kvFlag, cfgPath)
		return
	}
	fmt.Fprintf(w, `  outputs       %[1]s/out  (hook runs are logged to %[1]s/out/hooks.log)
  status        http://%[2]s/status

Try, in another terminal:
  bin/slipagent kv%[3]s put routes upstream.api.s3 '{"address": "10.0.0.3:8080"}'
  bin/slipagent kv%[3]s put app files.motd.txt 'hello again'
  bin/slipagent kv%[3]s delete app env.DEBUG
  bin/slipagent status%[4]s
Ctrl-C stops.

`, dir, addrs.HTTP, kvFlag, statusFlag)
}

// startDevServer starts a JetStream server on loopback, on port if it is
// free (else, or when port is 0, any port), keeping its data in storeDir
// across runs. nats-server reads port 0 as its default, 4222, so 0 becomes
// its RANDOM_PORT.
func startDevServer(storeDir string, port int) (*server.Server, error) {
	if port == 0 {
		port = server.RANDOM_PORT
	} else if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err != nil {
		port = server.RANDOM_PORT
	} else {
		l.Close()
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "slipagent-dev", Host: "127.0.0.1", Port: port,
		JetStream: true, StoreDir: storeDir, NoSigs: true, NoLog: true,
		JetStreamMaxMemory: 64 << 20, JetStreamMaxStore: 1 << 30,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded NATS did not start within 10s")
	}
	return srv, nil
}

// freeAddr returns addr if it can be listened on, else the same host with
// any free port.
func freeAddr(addr string) string {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		host, _, _ := net.SplitHostPort(addr)
		if l, err = net.Listen("tcp", net.JoinHostPort(host, "0")); err != nil {
			return addr
		}
	}
	defer l.Close()
	return l.Addr().String()
}

// devSeed is the sample configuration dev mode puts in empty buckets.
var devSeed = map[string][][2]string{
	"routes": {
		{"upstream.api.s1", `{"address": "10.0.0.1:8080", "weight": 3}`},
		{"upstream.api.s2", `{"address": "10.0.0.2:8080", "max_fails": 2, "fail_timeout": "10s"}`},
		{"upstream.web.s1", `{"address": "10.0.1.1:80"}`},
	},
	"app": {
		{"files.motd.txt", "Welcome to a host configured by slipagent.\n"},
		{"files.flags/checkout.json", `{"new_checkout": true}` + "\n"},
		{"app.name", "demo"},
		{"app.replicas", "3"},
		{"env.LOG_LEVEL", "info"},
		{"env.DEBUG", "false"},
	},
}

// seedDev creates the dev buckets and fills the empty ones.
func seedDev(ctx context.Context, url string) error {
	conn := natskv.New(natskv.Options{Servers: []string{url}, Timeout: 10 * time.Second})
	if err := conn.Connect(ctx); err != nil {
		return err
	}
	defer conn.Close()
	for bucket, kvs := range devSeed {
		s, err := conn.Store(ctx, kvcore.StoreConfig{Bucket: bucket, History: 5})
		if err != nil {
			return err
		}
		keys, err := s.Keys(ctx, "")
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			continue
		}
		for _, kv := range kvs {
			if _, err := s.Put(ctx, kv[0], []byte(kv[1])); err != nil {
				return err
			}
		}
	}
	return nil
}

// devHook and devCheck stand in for "systemctl reload …" and "nginx -t" in
// dev mode: the hook logs its run, the check refuses empty staged files.
const (
	devHook = `#!/bin/sh
# A stand-in for a reload in "slipagent dev": it logs the run.
echo "$(date +%T) $1 (watch $SLIPAGENT_WATCH, revision $SLIPAGENT_REVISION)" >> "$(dirname "$0")/out/hooks.log"
`
	devCheck = `#!/bin/sh
# A stand-in for "nginx -t" in "slipagent dev": every staged file must be non-empty.
printf '%s\n' "$SLIPAGENT_STAGED" | cut -f1 | while read -r f; do
	[ -z "$f" ] || [ -s "$f" ] || { echo "check: $f is empty" >&2; exit 1; }
done
`
)

// writeDevScripts puts the hook and check scripts in dir.
func writeDevScripts(dir string) error {
	for name, body := range map[string]string{"hook.sh": devHook, "check.sh": devCheck} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// devConfig is the agent configuration dev mode runs.
func devConfig(dir, modules, url, listen string, watches []devWatch) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# Generated by "slipagent dev"; edit the generator, not this file.
data_dir = "data"

nats {
  servers = [%q]
}

http {
  listen = %q
}
`, url, listen)
	for _, w := range watches {
		fmt.Fprintf(&b, "\nplugin %q {\n  module = %q\n", w.plugin, filepath.Join(modules, w.plugin+".wasm"))
		if w.config != "" {
			fmt.Fprintf(&b, "  config = %s\n", w.config)
		}
		fmt.Fprintf(&b, `}

watch %q {
  bucket   = %q
  prefixes = [%q]
  plugin   = %q
  output %q { dir = %q }
  hook %q {
    command = ["sh", %q, %q]
    timeout = "5s"
`, w.watch, w.bucket, w.prefix, w.plugin, w.output, "out/"+w.watch, w.hook, filepath.Join(dir, "hook.sh"), w.what)
		if w.check {
			fmt.Fprintf(&b, "    check   = [\"sh\", %q] # a real host would run [\"nginx\", \"-t\"]\n", filepath.Join(dir, "check.sh"))
		}
		b.WriteString("  }\n}\n")
	}
	return b.String()
}
