package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore/natskv"
)

const natskvDefaultURL = "nats://127.0.0.1:4222"

// natsFlags are the connection flags of the commands that talk to NATS.
type natsFlags struct {
	server, creds *string
	timeout       *time.Duration
	fs            *flag.FlagSet
}

func addNATSFlags(fs *flag.FlagSet) natsFlags {
	return natsFlags{
		fs:      fs,
		server:  fs.String("server", envOr("NATS_URL", natskvDefaultURL), "NATS server URLs, comma-separated ($NATS_URL; else the server of a \"slipagent dev\" running with ./dev-out)"),
		creds:   fs.String("creds", os.Getenv("NATS_CREDS"), "a .creds file ($NATS_CREDS)"),
		timeout: fs.Duration("timeout", 10*time.Second, "bound on each operation"),
	}
}

// connect connects to NATS; its error names the server URLs (callers exit
// with exitUnreachable).
func (n natsFlags) connect(ctx context.Context, name string) (*natskv.Conn, error) {
	servers := strings.Split(n.servers(), ",")
	conn := natskv.New(natskv.Options{Servers: servers, CredsFile: *n.creds, Timeout: *n.timeout, Name: name})
	if err := conn.Connect(ctx); err != nil {
		return nil, fmt.Errorf("cannot reach NATS at %s: %w", redactURLs(servers), err)
	}
	return conn, nil
}

// servers is -server, else $NATS_URL, else the server of a "slipagent dev"
// that runs with ./dev-out (its port can differ from 4222), else the default.
func (n natsFlags) servers() string {
	if flagSet(n.fs, "server") || os.Getenv("NATS_URL") != "" {
		return *n.server
	}
	if d, ok := runningDev(); ok {
		return d.NATS
	}
	return *n.server
}

// redactURLs lists server URLs for a message, without their passwords.
func redactURLs(servers []string) string {
	out := make([]string, 0, len(servers))
	for _, s := range servers {
		s = strings.TrimSpace(s)
		if u, err := url.Parse(s); err == nil {
			s = u.Redacted()
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
