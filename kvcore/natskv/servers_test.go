package natskv

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// TestCheckServers: every server URL form nats.go dials is accepted and
// given to nats.go without its user information; a URL no connection
// could use (a typo in the scheme, a port out of range, nothing at all) is
// a *ServerURLError before any dial, not a server to wait for.
func TestCheckServers(t *testing.T) {
	for _, tc := range []struct {
		servers []string
		dial    []string
	}{
		{[]string{"nats://127.0.0.1:4222"}, []string{"nats://127.0.0.1:4222"}},
		{[]string{"tls://n1.example:4443"}, []string{"tls://n1.example:4443"}},
		{[]string{"nats://u:p@n1:4222/"}, []string{"nats://n1:4222/"}},
		{[]string{"NATS://n1"}, []string{"nats://n1"}},
		{[]string{"ws://n1:8080/nats", "wss://n2/nats"}, []string{"ws://n1:8080/nats", "wss://n2/nats"}},
		{[]string{"127.0.0.1:4222"}, []string{"127.0.0.1:4222"}},
		{[]string{"u:p@localhost"}, []string{"localhost"}},
		{[]string{"[::1]:4222"}, []string{"[::1]:4222"}},
		{[]string{"nats://n1:4222, nats://n2:4222,,", "n3:4222"}, []string{"nats://n1:4222", "nats://n2:4222", "n3:4222"}},
		{[]string{"ws://n1:8080", "n2:8080"}, []string{"ws://n1:8080", "n2:8080"}}, // nats.go dials n2 as ws
		{[]string{"nats://:4222"}, []string{"nats://:4222"}},                       // the local host, to nats.go
	} {
		if err := CheckServers(tc.servers); err != nil {
			t.Errorf("CheckServers(%q) = %v; want nil", tc.servers, err)
			continue
		}
		no, err := Options{Servers: tc.servers}.withDefaults().natsOptions()
		if err != nil || !slices.Equal(no.Servers, tc.dial) {
			t.Errorf("natsOptions(%q) dials %q, %v; want %q", tc.servers, no.Servers, err, tc.dial)
		}
	}
	for _, tc := range []struct {
		servers  []string
		url, why string
	}{
		{[]string{"htp:/bad url"}, "htp:/bad url", "a path"},
		{[]string{"htp://n1:4222"}, "htp://n1:4222", `scheme "htp" is not nats, tls, ws or wss`},
		{[]string{"nats://127.0.0.1:99999"}, "nats://127.0.0.1:99999", "port 99999 is not between 1 and 65535"},
		{[]string{"nats://127.0.0.1:0"}, "nats://127.0.0.1:0", "port 0"},
		{[]string{"nats://n1:42x"}, "nats://n1:42x", "invalid port"},
		{[]string{"nats://bad host:4222"}, "nats://bad host:4222", "invalid character"},
		{[]string{""}, "", "names no server"},
		{[]string{"nats://n1:4222", " , "}, " , ", "names no server"},
		{[]string{"nats://"}, "nats://", "no host"},
		{[]string{"nats://u:secret@n1:99999"}, "nats://u:xxxxx@n1:99999", "port 99999"},
		{[]string{"nats://n1:4222", "ws://n2:8080"}, "ws://n2:8080", "cannot be mixed"},
	} {
		err := CheckServers(tc.servers)
		var se *ServerURLError
		if !errors.As(err, &se) || se.URL != tc.url || !strings.Contains(se.Reason, tc.why) {
			t.Errorf("CheckServers(%q) = %v; want a *ServerURLError for %q saying %q", tc.servers, err, tc.url, tc.why)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("CheckServers(%q) = %v shows the password", tc.servers, err)
		}
		_, err = Options{Servers: tc.servers}.withDefaults().natsOptions()
		if !errors.As(err, &se) || !errors.Is(err, kvcore.ErrConnectionFailed) {
			t.Errorf("natsOptions(%q) = %v; want a *ServerURLError and a failed connection", tc.servers, err)
		}
	}
}
