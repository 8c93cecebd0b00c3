package agent

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/natstest"
)

// shortTempDir is a temporary directory with a short path: a Unix socket's
// path is limited to about 100 bytes.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sa")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startHTTPAgent runs an agent without watches whose configuration is
// extra (an http block) in dir, until the returned stop is called; stop
// returns Run's error. It fails the test if Run fails at once.
func startHTTPAgent(t *testing.T, dir, extra string) (stop func() error) {
	t.Helper()
	cfg, err := Parse(filepath.Join(dir, "agent.hcl"), []byte("data_dir = \"data\"\n"+extra))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler), Notify: func(string) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { stop() })
	network, addr := cfg.HTTP.Network, cfg.HTTP.Address
	waitFor(t, "the http listener", func() bool {
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("the agent did not start: %v", err)
		default:
		}
		c, err := net.Dial(network, addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return stop
}

// unixClient is an HTTP client that reaches every URL through the socket.
func unixClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
}

func httpGet(t *testing.T, c *http.Client, url string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// The agent serves on a Unix socket with the configured mode, in a
// directory it creates (0750), replaces a stale socket left by a crash, and
// removes its socket when it stops.
func TestHTTPUnixSocket(t *testing.T) {
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "run", "http.sock")
	stop := startHTTPAgent(t, dir, `http { listen = "unix:run/http.sock" }`)
	if fi, err := os.Stat(filepath.Dir(sock)); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("socket directory: %v, %v; want 0750", fi.Mode(), err)
	}
	fi, err := os.Lstat(sock)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != DefaultSocketMode {
		t.Fatalf("socket: %v, %v; want a socket with mode %o", fi.Mode(), err, DefaultSocketMode)
	}
	if code, body := httpGet(t, unixClient(sock), "http://agent/status"); code != http.StatusOK || !strings.Contains(body, `"ready": true`) {
		t.Errorf("/status over the socket = %d %s", code, body)
	}
	if entries, _ := os.ReadDir(filepath.Dir(sock)); len(entries) != 1 {
		t.Errorf("the socket directory holds %d entries, want the socket alone", len(entries))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("the socket is still there after the agent stopped: %v", err)
	}

	// A socket nobody serves (an agent was killed) is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	startHTTPAgent(t, dir, `http {
  listen      = "unix:run/http.sock"
  socket_mode = "0600"
}`)
	if fi, err := os.Lstat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket after a stale one: %v, %v; want 0600", fi.Mode(), err)
	}
}

// A socket another process serves, or a file in the socket's place, is
// left alone and named in the error.
func TestHTTPUnixSocketInTheWay(t *testing.T) {
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "http.sock")
	live, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := listenUnix(sock, DefaultSocketMode); err == nil || !strings.Contains(err.Error(), "another process is serving it") || !strings.Contains(err.Error(), sock) {
		t.Errorf("listen on a live socket: %v", err)
	}
	live.Close()

	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("keep"), 0o644)
	if _, err := listenUnix(file, DefaultSocketMode); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("listen on a file: %v", err)
	}
	if readFile(file) != "keep" {
		t.Error("the file in the socket's place was changed")
	}
}

// TestCheckHTTP: the files of the http block that Run reads at its start
// (token_file, tls cert_file, key_file, client_ca_file) are read by
// CheckHTTP, for validate and a reload: one that is missing or unusable is
// named with its setting, its path and where the setting is.
func TestCheckHTTP(t *testing.T) {
	files := natstest.TLS(t)
	dir := t.TempDir()
	for name, content := range map[string]string{"http.token": "secret\n", "empty.token": " \n", "two.token": "a b\n", "notpem.crt": "hello\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hcl := filepath.Join(dir, "agent.hcl")
	tlsBlock := func(cert, key, ca string) string {
		return `http {
  listen = "127.0.0.1:0"
  tls {
    cert_file      = "` + cert + `"
    key_file       = "` + key + `"
    client_ca_file = "` + ca + `"
  }
}`
	}
	token := func(file string) string {
		return `http {
  listen     = "127.0.0.1:0"
  token_file = "` + file + `"
}`
	}
	for _, tc := range []struct {
		name, src string
		want      string // "": accepted
	}{
		{"no http", ``, ""},
		{"a token", token("http.token"), ""},
		{"tls", tlsBlock(files.CertFile, files.KeyFile, files.CAFile), ""},
		{"a missing token file", token("missing.token"), "agent: " + hcl + ":3: http token_file: open " + filepath.Join(dir, "missing.token") + ": no such file or directory"},
		{"an empty token file", token("empty.token"), "agent: " + hcl + ":3: http token_file " + filepath.Join(dir, "empty.token") + " is empty"},
		{"a token file of two words", token("two.token"), "agent: " + hcl + ":3: http token_file " + filepath.Join(dir, "two.token") + " holds more than one word"},
		{"a missing certificate", tlsBlock("missing.crt", files.KeyFile, files.CAFile), "agent: " + hcl + ":3: http tls: cert_file " + filepath.Join(dir, "missing.crt") + ", key_file " + files.KeyFile + ": open " + filepath.Join(dir, "missing.crt") + ": no such file or directory"},
		{"a missing key", tlsBlock(files.CertFile, "missing.key", files.CAFile), "agent: " + hcl + ":3: http tls: cert_file " + files.CertFile + ", key_file " + filepath.Join(dir, "missing.key") + ": open " + filepath.Join(dir, "missing.key") + ": no such file or directory"},
		{"a missing client CA", tlsBlock(files.CertFile, files.KeyFile, "missing.crt"), "agent: " + hcl + ":3: http tls: client_ca_file: open " + filepath.Join(dir, "missing.crt") + ": no such file or directory"},
		{"a client CA that is no PEM", tlsBlock(files.CertFile, files.KeyFile, "notpem.crt"), "agent: " + hcl + ":3: http tls: client_ca_file " + filepath.Join(dir, "notpem.crt") + " holds no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse(hcl, []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			a, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			err = a.CheckHTTP()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("CheckHTTP = %v, want it accepted", err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Errorf("CheckHTTP = %v, want %q", err, tc.want)
			}
		})
	}
}
