package natskv

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// ServerURLError is an entry of [Options.Servers] that no connection could
// ever use: it does not parse as a server URL, its scheme is not one
// nats.go dials, its port is out of range, or it names no server at all.
// It is found before dialling ([CheckServers], [Conn.Connect]): a setting
// to fix, not a server to wait for. Find it with errors.As.
type ServerURLError struct {
	URL    string // the entry, its password masked
	Reason string
}

func (e *ServerURLError) Error() string {
	return fmt.Sprintf("natskv: bad server URL %q: %s", e.URL, e.Reason)
}

// urlForms says what a server URL looks like, after what is wrong.
const urlForms = "; a server URL is nats://host:port (or tls://, ws://, wss://, or host:port)"

// serverSchemes are the schemes nats.go dials: nats and tls over TCP, ws
// and wss over websocket.
var serverSchemes = map[string]bool{"nats": true, "tls": true, "ws": true, "wss": true}

// CheckServers checks server URLs as nats.go reads them, without
// dialling: each entry is a URL or a comma-separated list of URLs (empty
// items are skipped, as nats.go skips them, but an entry must name a
// server). A URL is scheme://[user:password@ or token@]host[:port], the scheme
// nats, tls, ws or wss, or host[:port] without a scheme (nats.go then
// dials it as the other URLs); a missing port is nats.go's default (4222,
// or 80 and 443 for ws and wss). A path is kept for websocket URLs only.
// nats.go refuses a list mixing websocket and other URLs, and so does
// CheckServers. The error is a *[ServerURLError].
func CheckServers(servers []string) error {
	_, err := parseServers(servers)
	return err
}

// serverURL is one server of [Options.Servers]: dial is what nats.go is
// given, without the user information; user is that information.
type serverURL struct {
	dial string
	user *url.Userinfo
}

// parseServers splits and checks the entries of [Options.Servers]. An
// empty list is nats.go's default server.
func parseServers(servers []string) ([]serverURL, error) {
	var out []serverURL
	var user *url.Userinfo // the first URL's that carries one
	ws, first := false, true
	for _, entry := range servers {
		n := len(out)
		for _, one := range strings.Split(entry, ",") {
			one = strings.TrimSpace(one)
			if one == "" {
				continue
			}
			// A password may hold a comma: with an '@' anywhere in the
			// entry, a URL is shown with its password masked, and one
			// that does not parse is not shown nor quoted at all.
			shown := one
			if strings.Contains(entry, "@") {
				shown = redactURL(one)
			}
			u, schemeless, err := parseServerURL(one, strings.HasPrefix(shown, "[redacted]"))
			if err != nil {
				return nil, &ServerURLError{URL: shown, Reason: err.Error()}
			}
			isWS := u.Scheme == "ws" || u.Scheme == "wss"
			switch {
			case first:
				ws, first = isWS, false
			case !schemeless && isWS != ws:
				return nil, &ServerURLError{URL: shown, Reason: "websocket (ws://, wss://) and other URLs cannot be mixed in one list of servers"}
			}
			if u.User != nil && u.User.Username() != "" {
				if user != nil && u.User.String() != user.String() {
					return nil, &ServerURLError{URL: shown, Reason: "its user information differs from an earlier server URL's, and one set is presented to every server: give the same on each URL, or on the first only"}
				}
				user = u.User
			}
			s := serverURL{user: u.User}
			u.User = nil
			s.dial = u.String()
			if schemeless { // nats.go gives it the scheme of the others
				s.dial = strings.TrimPrefix(s.dial, u.Scheme+"://")
			}
			out = append(out, s)
		}
		if len(out) == n {
			return nil, &ServerURLError{URL: redactServers(entry), Reason: "it names no server" + urlForms}
		}
	}
	return out, nil
}

// parseServerURL parses one server URL; schemeless is true for host[:port]
// (parsed as nats://host[:port]). With secret set, the error quotes
// nothing of s (url.Parse's error, the port), which may hold part of a
// password.
func parseServerURL(s string, secret bool) (u *url.URL, schemeless bool, err error) {
	raw := s
	if !strings.Contains(s, "://") {
		raw, schemeless = "nats://"+s, true
	}
	u, err = url.Parse(raw)
	if err != nil {
		var ue *url.Error
		switch {
		case secret:
			err = errors.New("it does not parse as a URL")
		case errors.As(err, &ue):
			err = ue.Err
		}
		return nil, false, fmt.Errorf("%v%s", err, urlForms)
	}
	if !serverSchemes[u.Scheme] {
		return nil, false, fmt.Errorf("scheme %q is not nats, tls, ws or wss", u.Scheme)
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, false, errors.New("no host" + urlForms)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			if secret {
				return nil, false, errors.New("its port is not between 1 and 65535")
			}
			return nil, false, fmt.Errorf("port %s is not between 1 and 65535", p)
		}
	}
	if u.Scheme != "ws" && u.Scheme != "wss" && u.Path != "" && u.Path != "/" {
		return nil, false, fmt.Errorf("a path (%q) has no meaning to a NATS server%s", u.Path, urlForms)
	}
	return u, schemeless, nil
}
