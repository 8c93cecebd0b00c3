package agent

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// listenHTTP opens the listener an http block names: TCP (HTTPS with a tls
// block) or a Unix socket, which is removed again when the listener closes.
func listenHTTP(h *HTTPConfig) (net.Listener, error) {
	if h.Network == "unix" {
		return listenUnix(h.Address, h.SocketMode)
	}
	ln, err := net.Listen("tcp", h.Address)
	if err != nil {
		at := ""
		if r := h.ListenRange; r.Filename != "" {
			at = fmt.Sprintf(" (%s:%d)", r.Filename, r.Start.Line)
		}
		return nil, fmt.Errorf("http listen %s%s: %w; free the address or change http.listen", h.Address, at, err)
	}
	if h.TLS == nil {
		return ln, nil
	}
	cfg, err := serverTLS(h.TLS)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return tls.NewListener(ln, cfg), nil
}

// serverTLS loads an http tls block. A client CA makes the handshake ask for
// a client certificate and verify any that is given; httpAuth refuses
// requests without one (but for the public endpoints).
func serverTLS(t *HTTPTLSConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("http tls: cert_file %s, key_file %s: %w", t.CertFile, t.KeyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("http tls: client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("http tls: client_ca_file %s holds no PEM certificate", t.ClientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

// CheckHTTP reads the files of the http block as Run does when it starts:
// the token_file (one that is missing, empty or unreadable is refused) and
// the tls block's certificate, key and client CA. Run cannot start without
// them, so `slipagent validate` checks them, and so does a reload (which
// re-reads the token), before anything stops. Loading a configuration does
// not read them: commands that serve no http (status, once, plan) need not
// be able to read the key.
func (a *Agent) CheckHTTP() error {
	_, err := checkHTTP(a.cfg)
	return err
}

// checkHTTP is CheckHTTP for cfg. It returns the token ("" without
// token_file); its errors name the setting, the path and where it is set.
func checkHTTP(cfg *Config) (token string, err error) {
	h := cfg.HTTP
	if h == nil {
		return "", nil
	}
	if h.TokenFile != "" {
		if token, err = ReadHTTPToken(h.TokenFile); err != nil {
			return "", fmt.Errorf("agent: %s: %w", setAt(h.TokenFileRange), err)
		}
	}
	if h.TLS != nil && h.Network == "tcp" {
		if _, err := serverTLS(h.TLS); err != nil {
			return "", fmt.Errorf("agent: %s: %w", setAt(h.TLS.DefRange), err)
		}
	}
	return token, nil
}

// listenUnix serves on a Unix socket at path with mode. The directory is
// created (0750) if missing; a stale socket left by a crash is removed, one
// another process still serves is not. The socket is bound in a private
// directory, given its mode, then renamed into place, so nobody can connect
// while it still has the umask's mode.
func listenUnix(path string, mode os.FileMode) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("http socket directory: %w", err)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	private, err := os.MkdirTemp(dir, ".slipagent-http-")
	if err != nil {
		return nil, fmt.Errorf("http socket: %w", err)
	}
	defer os.RemoveAll(private)
	tmp := filepath.Join(private, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("http socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false) // it is renamed: unixSocket removes path
	if err := os.Chmod(tmp, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("http socket %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return nil, fmt.Errorf("http socket %s: %w", path, err)
	}
	return &unixSocket{Listener: ln, path: path}, nil
}

// removeStaleSocket removes a socket at path that nobody answers on. Anything
// else at path (a live socket, a file) is an error naming it.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("http socket: %w", err)
	case fi.Mode()&os.ModeSocket == 0:
		return fmt.Errorf("http socket %s: it exists and is not a socket (%v); remove it or change http.listen", path, fi.Mode())
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("http socket %s: another process is serving it (is an agent with this configuration running?)", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("http socket %s: removing the stale socket: %w", path, err)
	}
	return nil
}

// unixSocket removes its socket file once closed.
type unixSocket struct {
	net.Listener
	path string
	once sync.Once
	err  error
}

func (u *unixSocket) Close() error {
	u.once.Do(func() {
		u.err = u.Listener.Close()
		if err := os.Remove(u.path); err != nil && !errors.Is(err, os.ErrNotExist) && u.err == nil {
			u.err = err
		}
	})
	return u.err
}

// Addr is the socket's path (the listener was bound under another name).
func (u *unixSocket) Addr() net.Addr { return &net.UnixAddr{Name: u.path, Net: "unix"} }
