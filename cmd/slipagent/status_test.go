package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/internal/plugintest"
)

// runAgent runs "slipagent run -config cfg" until the test ends.
func runAgent(t *testing.T, cfg string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var mu sync.Mutex
	var stderr bytes.Buffer
	go func() {
		code := run(ctx, []string{"run", "-config", cfg}, &lockedWriter{&mu, &stderr}, &lockedWriter{&mu, &stderr})
		done <- code
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			mu.Lock()
			defer mu.Unlock()
			t.Errorf("slipagent run exited %d:\n%s", code, stderr.String())
		}
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// waitStatus runs "slipagent status args" until it exits 0 and returns its
// output.
func waitStatus(t *testing.T, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		code, out, errOut := runCmd(t, append([]string{"status"}, args...)...)
		if code == exitOK {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %q = %d\n%s%s", args, code, out, errOut)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// agentConfig writes a configuration with one watch of the files plugin on
// srv, and http, into dir.
func agentConfig(t *testing.T, dir string, srv *natstest.Server, http string) string {
	t.Helper()
	os.WriteFile(filepath.Join(dir, "files.wasm"), plugintest.Module(t, "plugins/examples/files"), 0o644)
	runCmd(t, "kv", "-server", srv.URL(), "put", "cfg", "files.a.conf", "1")
	cfg := filepath.Join(dir, "agent.hcl")
	os.WriteFile(cfg, []byte(`data_dir = "data"
nats { servers = ["`+srv.URL()+`"] }
plugin "files" { module = "files.wasm" }
watch "cfg" {
  bucket = "cfg"
  plugin = "files"
  output "files" { dir = "out" }
}
`+http), 0o644)
	return cfg
}

// status finds the agent's Unix socket and token in its configuration, or
// takes them as flags; without the token it is refused and says so.
func TestStatusUnixSocketAndToken(t *testing.T) {
	srv := natstest.Run(t)
	dir, err := os.MkdirTemp("", "sa") // a socket's path is short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.WriteFile(filepath.Join(dir, "http.token"), []byte("tok-123\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "wrong.token"), []byte("tok-456\n"), 0o600)
	cfg := agentConfig(t, dir, srv, `http {
  listen     = "unix:run/http.sock"
  token_file = "http.token"
}`)
	runAgent(t, cfg)

	out := waitStatus(t, "-config", cfg)
	if !strings.Contains(out, "cfg") || !strings.Contains(out, "WATCH") {
		t.Errorf("status -config:\n%s", out)
	}
	sock := "unix:" + filepath.Join(dir, "run", "http.sock")
	if code, out, errOut := runCmd(t, "status", "-http", sock, "-token-file", filepath.Join(dir, "http.token")); code != exitOK || !strings.Contains(out, "cfg") {
		t.Errorf("status -http %s -token-file = %d\n%s%s", sock, code, out, errOut)
	}
	if code, _, errOut := runCmd(t, "status", "-http", sock); code != exitFailure || !strings.Contains(errOut, "401") || !strings.Contains(errOut, "-token-file") {
		t.Errorf("status without the token = %d %q, want 1 and a 401 naming -token-file", code, errOut)
	}
	if code, _, errOut := runCmd(t, "status", "-config", cfg, "-token-file", filepath.Join(dir, "wrong.token")); code != exitFailure || !strings.Contains(errOut, "401") {
		t.Errorf("status with a wrong token = %d %q, want 1 and a 401", code, errOut)
	}
	// A socket directory others can write may hold anyone's socket: status
	// does not send it the token.
	run := filepath.Join(dir, "run")
	if err := os.Chmod(run, 0o777); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCmd(t, "status", "-config", cfg); code != exitFailure || out != "" || !strings.Contains(errOut, "http socket directory "+run+" is writable by every user") {
		t.Errorf("status with a socket directory others can write = %d %q %q, want 1 and a refusal", code, out, errOut)
	}
}

// Over TCP, status takes the token from the configuration and reaches an
// https listener that asks for a client certificate with -ca-file,
// -cert-file and -key-file.
func TestStatusTokenAndMutualTLS(t *testing.T) {
	srv := natstest.Run(t)
	dir := t.TempDir()
	files := natstest.TLS(t)
	os.WriteFile(filepath.Join(dir, "http.token"), []byte("tok-789"), 0o600)
	addr := freeAddr("127.0.0.1:0")
	cfg := agentConfig(t, dir, srv, `http {
  listen     = "`+addr+`"
  token_file = "http.token"
  tls {
    cert_file      = "`+files.CertFile+`"
    key_file       = "`+files.KeyFile+`"
    client_ca_file = "`+files.CAFile+`"
  }
}`)
	runAgent(t, cfg)

	tlsFlags := []string{"-ca-file", files.CAFile, "-cert-file", files.ClientCertFile, "-key-file", files.ClientKeyFile}
	if out := waitStatus(t, append([]string{"-config", cfg}, tlsFlags...)...); !strings.Contains(out, "cfg") {
		t.Errorf("status -config with a client certificate:\n%s", out)
	}
	if code, _, errOut := runCmd(t, "status", "-config", cfg, "-ca-file", files.CAFile); code != exitFailure || !strings.Contains(errOut, "401") {
		t.Errorf("status without a client certificate = %d %q, want 1 and a 401", code, errOut)
	}
	args := append([]string{"status", "-http", "https://" + addr, "-token-file", filepath.Join(dir, "http.token")}, tlsFlags...)
	if code, out, errOut := runCmd(t, args...); code != exitOK {
		t.Errorf("status -http https://... = %d\n%s%s", code, out, errOut)
	}
	args = append([]string{"status", "-http", "https://" + addr}, tlsFlags...)
	if code, _, errOut := runCmd(t, args...); code != exitFailure || !strings.Contains(errOut, "401") || !strings.Contains(errOut, "pass the token with -token-file") {
		t.Errorf("status -http https://... without the token = %d %q, want 1 and a 401 naming -token-file", code, errOut)
	}
	// crypto/tls does not send a certificate of a CA the agent did not ask
	// for: the agent answers 401, although -cert-file was passed.
	other := natstest.TLS(t)
	code, _, errOut := runCmd(t, "status", "-config", cfg, "-ca-file", files.CAFile, "-cert-file", other.ClientCertFile, "-key-file", other.ClientKeyFile)
	if want := "the agent did not accept the client certificate " + other.ClientCertFile; code != exitFailure || !strings.Contains(errOut, "401") || !strings.Contains(errOut, want) || strings.Contains(errOut, "-token-file") {
		t.Errorf("status with a client certificate of another CA = %d %q, want 1, a 401 and %q", code, errOut, want)
	}
}

// filesAgentDir returns a short temporary directory (a Unix socket's path
// in it stays short) holding files.wasm, the files example plugin.
func filesAgentDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sa")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "files.wasm"), plugintest.Module(t, "plugins/examples/files"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// filesAgentConfig writes dir/agent.hcl: watch cfg of bucket cfg through
// the files plugin (files.wasm, prefix "files.") into dir/out, its status on
// a Unix socket, with pluginExtra and watchExtra lines in those blocks.
func filesAgentConfig(t *testing.T, dir, url, pluginExtra, watchExtra string) string {
	t.Helper()
	cfg := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(cfg, []byte(`data_dir = "data"
cache_dir = "`+plugintest.CacheDir(t)+`"
nats { servers = ["`+url+`"] }
plugin "files" {
  module = "files.wasm"
  config = { prefix = "files." }
  `+pluginExtra+`
}
watch "cfg" {
  bucket = "cfg"
  plugin = "files"
  output "files" { dir = "out" }
  `+watchExtra+`
}
http { listen = "unix:run/http.sock" }
`), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// waitStatusFailing polls slipagent status until it exits 1 with every
// one of want in its output.
func waitStatusFailing(t *testing.T, cfg string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		code, out, errOut := runCmd(t, "status", "-config", cfg)
		if code == exitFailure && containsAll(out, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status = %d, want 1 saying %q:\n%s%s", code, want, out, errOut)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestStatusPrintsWhatThePluginLeftOut: a key the files plugin skips (not
// a valid path) leaves the watch ready, and status prints the plugin's
// error line under the table, still exiting 0.
func TestStatusPrintsWhatThePluginLeftOut(t *testing.T) {
	srv := natstest.Run(t)
	dir, err := os.MkdirTemp("", "sa") // a socket's path is short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg := agentConfig(t, dir, srv, `http { listen = "unix:run/http.sock" }`)
	runCmd(t, "kv", "-server", srv.URL(), "put", "cfg", "files.bad//path", "x")
	runAgent(t, cfg)
	want := `cfg: its plugin logged 1 error since the watch started, the last at `
	deadline := time.Now().Add(time.Minute)
	for {
		code, out, _ := runCmd(t, "status", "-config", cfg)
		if code == exitOK && strings.Contains(out, want) {
			if !strings.Contains(out, `files: skipping key "files.bad//path"`) {
				t.Errorf("status does not name the key:\n%s", out)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status = %d, want 0 and %q:\n%s", code, want, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
