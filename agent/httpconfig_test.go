package agent

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestHTTPConfig(t *testing.T) {
	cfg, err := Parse("/etc/slipagent/agent.hcl", []byte(`http {
  listen     = "unix:../../run/slipagent/http.sock"
  token_file = "http.token"
}`))
	if err != nil {
		t.Fatal(err)
	}
	if h := cfg.HTTP; h.Network != "unix" || h.Address != "/run/slipagent/http.sock" || h.SocketMode != 0o660 || h.TokenFile != filepath.FromSlash("/etc/slipagent/http.token") {
		t.Errorf("unix listener: %+v", h)
	}
	cfg, err = Parse("/etc/slipagent/agent.hcl", []byte(`http {
  listen = "0.0.0.0:9464"
  public = ["/healthz", "/readyz"]
  tls {
    cert_file      = "tls/cert.pem"
    key_file       = "/etc/ssl/key.pem"
    client_ca_file = "tls/ca.pem"
  }
}`))
	if err != nil {
		t.Fatal(err)
	}
	if h := cfg.HTTP; h.Network != "tcp" || h.Address != "0.0.0.0:9464" || h.TLS.CertFile != "/etc/slipagent/tls/cert.pem" || h.TLS.KeyFile != "/etc/ssl/key.pem" || h.TLS.ClientCAFile != "/etc/slipagent/tls/ca.pem" {
		t.Errorf("tcp listener: %+v %+v", h, h.TLS)
	}
}

func TestHTTPConfigErrors(t *testing.T) {
	for _, tt := range []struct{ name, src, want string }{
		{"no port", `http { listen = "localhost" }`, `"localhost" is neither HOST:PORT`},
		{"empty socket", `http { listen = "unix:" }`, `"unix:" must be followed by the socket's path`},
		{"socket_mode on tcp", `http {
  listen      = "127.0.0.1:9464"
  socket_mode = "0600"
}`, "socket_mode applies to a unix: listener only"},
		{"socket open to others", `http {
  listen      = "unix:/run/a.sock"
  socket_mode = "0666"
}`, `"0666": the socket is "0600"`},
		{"socket its group can only read", `http {
  listen      = "unix:/run/a.sock"
  socket_mode = "0640"
}`, `"0640": the socket is "0600"`},
		{"socket mode not octal", `http {
  listen      = "unix:/run/a.sock"
  socket_mode = "rw"
}`, `"rw" is not an octal file mode`},
		{"tls on a socket", `http {
  listen = "unix:/run/a.sock"
  tls {
    cert_file = "c"
    key_file  = "k"
  }
}`, "tls applies to a TCP listener"},
		{"public metrics", `http {
  listen = "127.0.0.1:9464"
  public = ["/healthz", "/metrics"]
}`, `"/metrics": only /healthz and /readyz may answer without authentication`},
		{"inline token", `http {
  listen = "127.0.0.1:9464"
  token  = "abc"
}`, `Unsupported argument`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.hcl", []byte(tt.src))
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "bad.hcl:") {
				t.Errorf("err = %v, want a positioned error mentioning %q", err, tt.want)
			}
		})
	}
}
