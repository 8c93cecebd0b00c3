package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/rootonly"
)

// hookConfig parses a configuration with one watch whose hooks are hooks
// (HCL blocks) and returns them by name.
func hookConfig(t *testing.T, hooks string) (map[string]*HookConf, error) {
	t.Helper()
	src := `
plugin "p" { module = "p.wasm" }
watch "w" {
  bucket = "b"
  plugin = "p"
` + hooks + `
}`
	cfg, err := Parse(filepath.Join(t.TempDir(), "agent.hcl"), []byte(src))
	if err != nil {
		return nil, err
	}
	out := map[string]*HookConf{}
	for _, h := range cfg.Watches[0].Hooks {
		out[h.Name] = h
	}
	return out, nil
}

func TestHookEnvironment(t *testing.T) {
	agentEnv := []string{
		"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "LC_TIME=de_DE.UTF-8", "HOME=/root",
		"SLIPAGENT_NATS_CREDS=c2VjcmV0", "NOTIFY_SOCKET=/run/systemd/notify",
		"VAULT_ADDR=https://vault:8200", "VAULT_TOKEN=s.secret", "CONSUL_HTTP_ADDR=x",
	}
	extra := []string{"SLIPAGENT_WATCH=w", "SLIPAGENT_HOOK=h"}
	tests := []struct {
		name string
		env  string // the hook's env block, HCL
		want []string
	}{
		{"pristine by default", ``, []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "LC_TIME=de_DE.UTF-8", "SLIPAGENT_WATCH=w", "SLIPAGENT_HOOK=h"}},
		{"allowlist and custom", `env {
  allowlist = ["HOME", "VAULT_*"]
  denylist  = ["VAULT_TOKEN"]
  custom    = { VAULT_NAMESPACE = "ops", LANG = "en_US.UTF-8" }
}`, []string{"PATH=/usr/bin:/bin", "LANG=en_US.UTF-8", "LC_TIME=de_DE.UTF-8", "HOME=/root", "VAULT_ADDR=https://vault:8200", "VAULT_NAMESPACE=ops", "SLIPAGENT_WATCH=w", "SLIPAGENT_HOOK=h"}},
		{"not pristine inherits all but the denylist", `env {
  pristine = false
  denylist = ["SLIPAGENT_NATS_CREDS", "NOTIFY_SOCKET"]
}`, []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "LC_TIME=de_DE.UTF-8", "HOME=/root", "VAULT_ADDR=https://vault:8200", "VAULT_TOKEN=s.secret", "CONSUL_HTTP_ADDR=x", "SLIPAGENT_WATCH=w", "SLIPAGENT_HOOK=h"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hooks, err := hookConfig(t, `hook "h" {
  command = ["true"]
  `+tc.env+`
}`)
			if err != nil {
				t.Fatal(err)
			}
			in := slices.Clone(agentEnv)
			got := hooks["h"].Env.environ(in, extra)
			if !slices.Equal(in, agentEnv) {
				t.Errorf("environ changed its input: %q", in)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("environment\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestHookCannotSeeTheAgentsSecrets runs a hook and its check the way a watch
// does and looks at the environment they got: a secret in the agent's
// environment (the NATS credentials of env("…")) is not there.
func TestHookCannotSeeTheAgentsSecrets(t *testing.T) {
	t.Setenv("SLIPAGENT_NATS_CREDS", "c2VjcmV0LWNyZWRz")
	t.Setenv("VAULT_ADDR", "https://vault:8200")
	dir := t.TempDir()
	hooks, err := hookConfig(t, `hook "h" {
  command = ["sh", "-c", "env > `+dir+`/hook.env"]
  check   = ["sh", "-c", "env > `+dir+`/check.env"]
  env { allowlist = ["VAULT_ADDR"] }
}`)
	if err != nil {
		t.Fatal(err)
	}
	h := hooks["h"]
	extra := []string{"SLIPAGENT_HOOK=h"}
	for _, argv := range [][]string{h.Command, h.Check} {
		if err := runCommand(context.Background(), discard, argv, 10*time.Second, hookProcess(h, extra)); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"hook.env", "check.env"} {
		env := readFile(filepath.Join(dir, f))
		if strings.Contains(env, "c2VjcmV0LWNyZWRz") {
			t.Errorf("%s holds the agent's NATS credentials:\n%s", f, env)
		}
		for _, want := range []string{"SLIPAGENT_HOOK=h", "VAULT_ADDR=https://vault:8200", "PATH=" + os.Getenv("PATH")} {
			if !strings.Contains(env, want+"\n") {
				t.Errorf("%s lacks %s:\n%s", f, want, env)
			}
		}
	}
}

func TestHookEnvRefused(t *testing.T) {
	for _, tc := range []struct{ name, env, want string }{
		{"custom SLIPAGENT_", `custom = { SLIPAGENT_WATCH = "x" }`, `hook "h" of watch "w": env custom cannot set SLIPAGENT_WATCH`},
		{"bad glob", `allowlist = ["VAULT_["]`, `hook "h" of watch "w": env allowlist entry "VAULT_["`},
		{"assignment in denylist", `denylist = ["A=b"]`, `env denylist entry "A=b"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := hookConfig(t, `hook "h" {
  command = ["true"]
  env { `+tc.env+` }
}`)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestHookRunsAsAnotherUser runs a hook and its check with user and group
// set and reads the ids they report.
func TestHookRunsAsAnotherUser(t *testing.T) {
	rootonly.Require(t, "switching a hook's user (CAP_SETUID and CAP_SETGID)")
	hooks, err := hookConfig(t, `
hook "nobody" {
  command = ["sh", "-c", "echo $(id -u):$(id -g):$(id -G); exit 7"]
  check   = ["sh", "-c", "echo $(id -u):$(id -g):$(id -G); exit 7"]
  user    = "nobody"
}
hook "daemon" {
  command = ["sh", "-c", "echo $(id -u):$(id -g):$(id -G); exit 7"]
  user    = "65534"
  group   = "daemon"
}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		hook string
		argv []string
		want string
	}{
		{"nobody", hooks["nobody"].Command, "65534:65534:65534"},
		{"nobody", hooks["nobody"].Check, "65534:65534:65534"},
		{"daemon", hooks["daemon"].Command, "65534:1:1 65534"},
	} {
		err := runCommand(context.Background(), discard, tc.argv, 10*time.Second, hookProcess(hooks[tc.hook], nil))
		var ce *CommandError
		if !errors.As(err, &ce) || ce.ExitCode != 7 {
			t.Fatalf("hook %s: err = %v, want its exit 7", tc.hook, err)
		}
		if got := strings.TrimSpace(ce.Output); got != tc.want {
			t.Errorf("hook %s ran as uid:gid:groups %q, want %q", tc.hook, got, tc.want)
		}
	}
}

func TestHookUnknownUserOrGroupIsRefusedAtLoad(t *testing.T) {
	for _, tc := range []struct{ name, set, want string }{
		{"user", `user = "slipagent-no-such-user"`, `Unknown hook user; hook "h" of watch "w": user = "slipagent-no-such-user"`},
		{"group", `group = "slipagent-no-such-group"`, `Unknown hook group; hook "h" of watch "w": group = "slipagent-no-such-group"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := hookConfig(t, `hook "h" {
  command = ["true"]
  `+tc.set+`
}`)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestAgentHookDoesNotSeeTheNATSCredentials runs an agent whose NATS
// credentials would come from its environment, as agent.hcl.example
// suggests, and reads the environment its hook got.
func TestAgentHookDoesNotSeeTheNATSCredentials(t *testing.T) {
	t.Setenv("SLIPAGENT_NATS_CREDS", "c2VjcmV0LWNyZWRz")
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "alpha")
	f.start(f.config(strings.Replace(filesConfig, `command = ["sh", "-c", "echo $SLIPAGENT_REVISION >> $DIR/hooks.log"]`,
		`command = ["sh", "-c", "env > $DIR/hook.env.tmp && mv $DIR/hook.env.tmp $DIR/hook.env"]`, 1)))
	path := filepath.Join(f.dir, "hook.env")
	waitFor(t, "the hook", func() bool { _, err := os.Stat(path); return err == nil })
	env := readFile(path)
	if strings.Contains(env, "c2VjcmV0LWNyZWRz") {
		t.Errorf("the hook saw the agent's NATS credentials:\n%s", env)
	}
	if !strings.Contains(env, "SLIPAGENT_WATCH=cfg\n") {
		t.Errorf("the hook lacks SLIPAGENT_WATCH:\n%s", env)
	}
}

// TestRunAsTheAgentItselfNeedsNoPrivilege: a hook naming the agent's own
// user and groups starts without a credential switch, which a non-root
// agent could not make (setgroups needs CAP_SETGID even to change nothing).
func TestRunAsTheAgentItselfNeedsNoPrivilege(t *testing.T) {
	own, err := os.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	groups := []uint32{}
	for _, g := range own {
		groups = append(groups, uint32(g))
	}
	r := &RunAs{UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), Groups: groups}
	if c := r.credential(); c != nil {
		t.Errorf("credential = %+v, want none", c)
	}
	other := &RunAs{UID: uint32(os.Getuid()) + 1, GID: uint32(os.Getgid()), Groups: groups}
	if other.credential() == nil {
		t.Error("another uid got no credential")
	}
}

// noSetuidEnv makes TestHookUserWithoutTheCapabilities run its command: its
// root parent set it, having dropped CAP_SETUID and CAP_SETGID (setpriv).
const noSetuidEnv = "SLIPAGENT_TEST_NO_SETUID"

// TestHookUserWithoutTheCapabilities: a hook with user, run by an agent
// without CAP_SETUID and CAP_SETGID (a unit without the hooks drop-in), fails
// naming the capabilities and the drop-in, not with a bare "operation not
// permitted".
func TestHookUserWithoutTheCapabilities(t *testing.T) {
	if os.Geteuid() == 0 && os.Getenv(noSetuidEnv) == "" {
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			t.Fatalf("setpriv (util-linux) drops root's CAP_SETUID for this test: %v", err)
		}
		cmd := exec.Command(setpriv, "--bounding-set=-setuid,-setgid", os.Args[0], "-test.run=^TestHookUserWithoutTheCapabilities$", "-test.v")
		cmd.Env = append(os.Environ(), noSetuidEnv+"=1")
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "--- PASS") {
			t.Fatalf("without CAP_SETUID and CAP_SETGID: %v\n%s", err, out)
		}
		return
	}
	other := uint32(os.Geteuid() + 1)
	err := runCommand(context.Background(), slog.New(slog.DiscardHandler), []string{"true"}, 10*time.Second,
		process{runAs: &RunAs{UID: other, GID: other, Groups: []uint32{}}})
	for _, want := range []string{"operation not permitted", fmt.Sprintf("running it as uid %d gid %d", other, other), "needs CAP_SETUID and CAP_SETGID",
		"hooks-restart-services.conf", "/etc/systemd/system/slipagent.service.d/"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
}
