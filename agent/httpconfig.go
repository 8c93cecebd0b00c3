package agent

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// DefaultSocketMode is the mode of a unix: http socket: the agent's user and
// group may connect.
const DefaultSocketMode = 0o660

// unixPrefix starts an http listen address that is a Unix socket's path.
const unixPrefix = "unix:"

// publicEndpoints are the endpoints an http block may answer without
// authentication: probes (kubelet, load balancers) often cannot send a token
// or a client certificate. /metrics and /status always need it when set.
var publicEndpoints = []string{"/healthz", "/readyz"}

// finalize checks the http block and fills in Network, Address and SocketMode.
func (h *HTTPConfig) finalize(diags hcl.Diagnostics) hcl.Diagnostics {
	if path, ok := strings.CutPrefix(h.Listen, unixPrefix); ok {
		h.Network = "unix"
		if path == "" {
			diags = append(diags, errAt(h.ListenRange, "Invalid listen", `"unix:" must be followed by the socket's path, e.g. "unix:/run/slipagent/http.sock".`))
		}
		h.Address = filepath.Clean(relativeTo(h.ListenRange, path))
		if h.TLS != nil {
			diags = append(diags, errAt(h.TLS.DefRange, "TLS on a Unix socket", "tls applies to a TCP listener; a Unix socket is guarded by its mode (socket_mode) and its directory."))
		}
	} else {
		h.Network, h.Address = "tcp", h.Listen
		if _, _, err := net.SplitHostPort(h.Listen); err != nil {
			diags = append(diags, errAt(h.ListenRange, "Invalid listen", fmt.Sprintf("%q is neither HOST:PORT (e.g. \"127.0.0.1:9464\") nor unix:PATH (e.g. \"unix:/run/slipagent/http.sock\").", h.Listen)))
		}
		if h.SocketModeS != "" {
			diags = append(diags, errAt(h.SocketModeRange, "socket_mode without a socket", "socket_mode applies to a unix: listener only."))
		}
	}
	h.SocketMode = DefaultSocketMode
	if h.SocketModeS != "" {
		n := len(diags)
		h.SocketMode, diags = parseMode(h.SocketModeS, h.SocketModeRange, diags)
		// Connecting to a socket takes write permission: a group that may
		// only read it (0640) could not connect, so the group gets both or
		// neither.
		if len(diags) == n && h.SocketMode != 0o600 && h.SocketMode != 0o660 {
			diags = append(diags, errAt(h.SocketModeRange, "Invalid socket_mode", fmt.Sprintf("%q: the socket is \"0600\" (the agent's user connects) or \"0660\" (and its group); connecting takes read and write permission, and others are never let in.", h.SocketModeS)))
		}
	}
	if h.TokenFile != "" {
		h.TokenFile = relativeTo(h.TokenFileRange, h.TokenFile)
	}
	for _, p := range h.Public {
		if !slices.Contains(publicEndpoints, p) {
			diags = append(diags, errAt(h.PublicRange, "Invalid public endpoint", fmt.Sprintf("%q: only %s may answer without authentication.", p, strings.Join(publicEndpoints, " and "))))
		}
	}
	if t := h.TLS; t != nil {
		t.CertFile = relativeTo(t.DefRange, t.CertFile)
		t.KeyFile = relativeTo(t.DefRange, t.KeyFile)
		if t.ClientCAFile != "" {
			t.ClientCAFile = relativeTo(t.DefRange, t.ClientCAFile)
		}
	}
	return diags
}
