package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/slipstreamkv/slipstream/agent"
)

// defaultHTTP is where status looks for the agent without -http or a
// configuration.
const defaultHTTP = "127.0.0.1:9464"

// endpointFlags say how to reach an agent's http endpoints: from its
// configuration (its http block), or from flags, which win.
type endpointFlags struct {
	config    string
	http      string
	tokenFile string
	caFile    string
	certFile  string
	keyFile   string
}

func (f *endpointFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "read the http block of this agent configuration (default "+defaultConfig+" if it exists)")
	fs.StringVar(&f.http, "http", "", "the agent's http listener: HOST:PORT, https://HOST:PORT or unix:PATH (default: that of a \"slipagent dev\" running with ./dev-out, else "+defaultHTTP+")")
	fs.StringVar(&f.http, "addr", "", "same as -http")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the bearer token (default: the configuration's http token_file)")
	fs.StringVar(&f.caFile, "ca-file", "", "CA certificates (PEM) to verify an https listener with, instead of the system's")
	fs.StringVar(&f.certFile, "cert-file", "", "client certificate (PEM) for an https listener that asks for one")
	fs.StringVar(&f.keyFile, "key-file", "", "the client certificate's key (PEM)")
}

// endpoint is an agent's http listener, ready to be asked.
type endpoint struct {
	base   string // URL without the path
	token  string
	client *http.Client
	cert   *clientCert // -cert-file's certificate, nil without
}

// clientCert is the client certificate offered to an https listener. It
// is sent only when the listener asks for one from CAs among which is its
// issuer, as crypto/tls does with tls.Config.Certificates, but remembers a
// listener that asked for others: it then answers 401 to a client that
// passed a certificate.
type clientCert struct {
	file    string
	cert    tls.Certificate
	refused atomic.Bool // the listener asked for a certificate from other CAs
}

// get is the tls.Config's GetClientCertificate.
func (c *clientCert) get(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if err := cri.SupportsCertificate(&c.cert); err != nil {
		c.refused.Store(true)
		return &tls.Certificate{}, nil // none, as crypto/tls sends
	}
	return &c.cert, nil
}

// errNoHTTP is a configuration without an http block.
var errNoHTTP = errors.New("the configuration has no http block: the agent serves no endpoints")

// errBadHTTPFlag is an -http value that is no address: a usage error, where
// resolve's other errors are files it could not use.
var errBadHTTPFlag = errors.New("want HOST:PORT, https://HOST:PORT or unix:PATH")

// configPath is the configuration to read: -config, else (without -http
// and with no "slipagent dev" running from ./dev-out) the default one if it
// exists, else none.
func (f *endpointFlags) configPath() string {
	if f.config == "" && f.http == "" {
		if _, ok := runningDev(); ok {
			return ""
		}
		if _, err := os.Stat(defaultConfig); err == nil {
			return defaultConfig
		}
	}
	return f.config
}

// resolve turns the flags and h, the http block of the configuration at
// path (nil if none was read), into an endpoint.
func (f *endpointFlags) resolve(h *agent.HTTPConfig, path string) (*endpoint, error) {
	if path != "" && h == nil && f.http == "" {
		return nil, fmt.Errorf("%s: %w", path, errNoHTTP)
	}
	addr := defaultHTTP
	useTLS := false
	switch {
	case f.http != "":
		addr = f.http
	case h != nil && h.Network == "unix":
		addr = "unix:" + h.Address
	case h != nil:
		addr, useTLS = h.Address, h.TLS != nil
	default:
		if d, ok := runningDev(); ok {
			if d.HTTP == "" { // rather than ask whatever answers on defaultHTTP
				return nil, fmt.Errorf("the slipagent dev recorded in %s (pid %d) runs NATS only (-nats-only), no agent: give -http or -config to ask another",
					filepath.Join(defaultDevDir, devFile), d.PID)
			}
			addr = d.HTTP
		}
	}
	tokenFile := f.tokenFile
	if tokenFile == "" && h != nil {
		tokenFile = h.TokenFile
	}
	e := &endpoint{client: &http.Client{}}
	if tokenFile != "" {
		tok, err := agent.ReadHTTPToken(tokenFile)
		if err != nil {
			return nil, err
		}
		e.token = tok
	}
	if sock, ok := strings.CutPrefix(addr, "unix:"); ok {
		// Whoever can write the socket's directory can put their own
		// socket there and read the token: as the agent, refuse it.
		if e.token != "" {
			if err := agent.CheckTrustedPath("http socket directory", filepath.Dir(sock)); err != nil {
				return nil, err
			}
		}
		e.base = "http://slipagent"
		e.client.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}
		return e, nil
	}
	if rest, ok := strings.CutPrefix(addr, "https://"); ok {
		addr, useTLS = rest, true
	} else {
		addr = strings.TrimPrefix(addr, "http://")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("-http %q: %w", f.http, errBadHTTPFlag)
	}
	if !useTLS {
		e.base = "http://" + addr
		return e, nil
	}
	cfg, cert, err := f.clientTLS()
	if err != nil {
		return nil, err
	}
	e.cert = cert
	e.base = "https://" + addr
	e.client.Transport = &http.Transport{TLSClientConfig: cfg}
	return e, nil
}

// clientTLS is the TLS configuration -ca-file, -cert-file and -key-file
// say, and the client certificate it offers (nil without -cert-file).
func (f *endpointFlags) clientTLS() (*tls.Config, *clientCert, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, nil, fmt.Errorf("-ca-file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("-ca-file %s holds no PEM certificate", f.caFile)
		}
	}
	if f.certFile == "" && f.keyFile == "" {
		return cfg, nil, nil
	}
	cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("-cert-file %s, -key-file %s: %w", f.certFile, f.keyFile, err)
	}
	c := &clientCert{file: f.certFile, cert: cert}
	cfg.GetClientCertificate = c.get
	return cfg, c, nil
}

// unauthorized says what to do about an answer 401 (Unauthorized).
func (e *endpoint) unauthorized() string {
	switch {
	case e.cert == nil:
		return "pass the token with -token-file (or -config), or a client certificate with -cert-file and -key-file"
	case e.cert.refused.Load():
		return fmt.Sprintf("the agent did not accept the client certificate %s (-cert-file), so it was not sent: is it signed by the agent's http tls client_ca_file?", e.cert.file)
	default:
		return "pass the token with -token-file (or -config)"
	}
}

// get asks the endpoint for path.
func (e *endpoint) get(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.base+path, nil)
	if err != nil {
		return nil, err
	}
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	return e.client.Do(req)
}
