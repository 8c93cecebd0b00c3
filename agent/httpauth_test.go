package agent

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/natstest"
)

// freeAddr is a TCP address nothing listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// With a token_file every endpoint wants the token, but for those listed
// as public, which answer anonymous requests without the watches' details.
func TestHTTPToken(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "http.token"), []byte("s3cret-token\n"), 0o600)
	addr := freeAddr(t)
	startHTTPAgent(t, dir, `http {
  listen     = "`+addr+`"
  token_file = "http.token"
  public     = ["/healthz"]
}`)
	c, base := http.DefaultClient, "http://"+addr
	for _, path := range []string{"/status", "/metrics", "/readyz"} {
		if code, body := httpGet(t, c, base+path); code != http.StatusUnauthorized || !strings.Contains(body, "bearer token") {
			t.Errorf("%s without a token = %d %s, want 401", path, code, body)
		}
		if code, _ := httpGet(t, c, base+path, "Authorization", "Bearer wrong"); code != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token = %d, want 401", path, code)
		}
		if code, _ := httpGet(t, c, base+path, "Authorization", "s3cret-token"); code != http.StatusUnauthorized {
			t.Errorf("%s with the token but not as a bearer = %d, want 401", path, code)
		}
		if code, body := httpGet(t, c, base+path, "Authorization", "Bearer s3cret-token"); code != http.StatusOK {
			t.Errorf("%s with the token = %d %s", path, code, body)
		}
		if code, body := httpGet(t, c, base+path, "Authorization", "bearer s3cret-token"); code != http.StatusOK {
			t.Errorf("%s with the token, the scheme in lower case = %d %s", path, code, body)
		}
		if code, _ := httpGet(t, c, base+path, "Authorization", "Basic s3cret-token"); code != http.StatusUnauthorized {
			t.Errorf("%s with the token under another scheme = %d, want 401", path, code)
		}
	}
	if code, body := httpGet(t, c, base+"/healthz"); code != http.StatusOK || body != "{\n  \"status\": \"ok\"\n}\n" {
		t.Errorf("public /healthz without a token = %d %q", code, body)
	}
}

// An agent whose token file is missing or empty does not start, and says
// which file.
func TestHTTPTokenFileRefused(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "empty.token"), []byte("\n"), 0o600)
	for file, want := range map[string]string{"missing.token": "no such file", "empty.token": "empty.token is empty"} {
		cfg, err := Parse(filepath.Join(dir, "agent.hcl"), []byte(`data_dir = "data"
http {
  listen     = "`+freeAddr(t)+`"
  token_file = "`+file+`"
}`))
		if err != nil {
			t.Fatal(err)
		}
		a, err := New(cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Run(t.Context()); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "token_file") {
			t.Errorf("Run with %s = %v, want an error naming token_file and %q", file, err, want)
		}
	}
}

// With tls.client_ca_file a request needs a client certificate that CA
// signed: none, or one of another CA, is refused; public endpoints answer
// without one.
func TestHTTPMutualTLS(t *testing.T) {
	files, other := natstest.TLS(t), natstest.TLS(t)
	addr := freeAddr(t)
	startHTTPAgent(t, t.TempDir(), `http {
  listen = "`+addr+`"
  public = ["/readyz"]
  tls {
    cert_file      = "`+files.CertFile+`"
    key_file       = "`+files.KeyFile+`"
    client_ca_file = "`+files.CAFile+`"
  }
}`)
	roots := x509.NewCertPool()
	ca, _ := os.ReadFile(files.CAFile)
	roots.AppendCertsFromPEM(ca)
	client := func(certFile, keyFile string) *http.Client {
		cfg := &tls.Config{RootCAs: roots}
		if certFile != "" {
			cert, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				t.Fatal(err)
			}
			// Offered whatever CAs the listener names (crypto/tls would
			// keep back another CA's certificate): the listener must
			// refuse it itself.
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	base := "https://" + addr
	if code, body := httpGet(t, client("", ""), base+"/status"); code != http.StatusUnauthorized || !strings.Contains(body, "client certificate") {
		t.Errorf("/status without a client certificate = %d %s, want 401", code, body)
	}
	if resp, err := client(other.ClientCertFile, other.ClientKeyFile).Get(base + "/status"); err == nil {
		resp.Body.Close()
		t.Errorf("/status with another CA's client certificate = %d, want a failed handshake", resp.StatusCode)
	}
	if code, body := httpGet(t, client(files.ClientCertFile, files.ClientKeyFile), base+"/status"); code != http.StatusOK {
		t.Errorf("/status with a client certificate = %d %s", code, body)
	}
	if code, _ := httpGet(t, client("", ""), base+"/readyz"); code != http.StatusOK {
		t.Errorf("public /readyz without a client certificate = %d", code)
	}
	if code, _ := httpGet(t, http.DefaultClient, "http://"+addr+"/readyz"); code != http.StatusBadRequest {
		t.Errorf("plain HTTP on a tls listener = %d, want 400", code)
	}
}

// An anonymous answer of a public endpoint gives the status alone; the
// watches' names and errors are for those who authenticate.
func TestHTTPPublicHealthHidesWatches(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "http.token"), []byte("tok"), 0o600)
	cfg, err := Parse(filepath.Join(dir, "agent.hcl"), []byte(`data_dir = "data"
plugin "p" { module = "p.wasm" }
watch "secret-routes" {
  bucket = "b"
  plugin = "p"
}
http {
  listen     = "127.0.0.1:0"
  token_file = "http.token"
  public     = ["/readyz"]
}`))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := newHTTPAuth(cfg.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(auth.wrap(a.Handler()))
	defer srv.Close()
	if code, body := httpGet(t, srv.Client(), srv.URL+"/readyz"); code != http.StatusServiceUnavailable || strings.Contains(body, "secret-routes") || !strings.Contains(body, "not ready") {
		t.Errorf("anonymous /readyz = %d %s, want 503 without the watch", code, body)
	}
	if code, body := httpGet(t, srv.Client(), srv.URL+"/readyz", "Authorization", "Bearer tok"); code != http.StatusServiceUnavailable || !strings.Contains(body, "secret-routes") {
		t.Errorf("authenticated /readyz = %d %s, want 503 naming the watch", code, body)
	}
}
