package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore/natskv"
)

const natskvDefaultURL = "nats://127.0.0.1:4222"

// natsFlags are the connection flags of the commands that talk to NATS.
type natsFlags struct {
	server, creds          *string
	tlsCA, tlsCert, tlsKey *string
	timeout                *time.Duration
	domain                 *string
	fs                     *flag.FlagSet
}

func addNATSFlags(fs *flag.FlagSet) natsFlags {
	n := addNATSServerFlags(fs)
	n.timeout = fs.Duration("timeout", defaultOpTimeout, "bound on each operation")
	return n
}

// defaultOpTimeout bounds each NATS operation of a command.
const defaultOpTimeout = 10 * time.Second

// addNATSServerFlags adds -server, -creds, -tlsca, -tlscert, -tlskey and
// -js-domain, for commands whose
// -timeout bounds something else; each operation is bounded by
// defaultOpTimeout.
func addNATSServerFlags(fs *flag.FlagSet) natsFlags {
	timeout := defaultOpTimeout
	return natsFlags{
		fs:      fs,
		server:  fs.String("server", envOr("NATS_URL", natskvDefaultURL), "NATS server URLs, comma-separated ($NATS_URL; else the server of a \"slipagent dev\" running with ./dev-out)"),
		creds:   fs.String("creds", os.Getenv("NATS_CREDS"), "a .creds file ($NATS_CREDS)"),
		tlsCA:   fs.String("tlsca", os.Getenv("NATS_CA"), "PEM file of the CAs that verify the servers ($NATS_CA)"),
		tlsCert: fs.String("tlscert", os.Getenv("NATS_CERT"), "PEM client certificate, with -tlskey ($NATS_CERT)"),
		tlsKey:  fs.String("tlskey", os.Getenv("NATS_KEY"), "PEM key of -tlscert ($NATS_KEY)"),
		timeout: &timeout,
		domain:  fs.String("js-domain", os.Getenv("NATS_JS_DOMAIN"), "JetStream domain of the buckets, e.g. the hub's from a leaf node ($NATS_JS_DOMAIN)"),
	}
}

// connect connects to NATS; its error names the server URLs, or is a
// *natskv.CredsError for -creds that cannot be used (callers exit with
// connectExit).
func (n natsFlags) connect(ctx context.Context, name string) (*natskv.Conn, error) {
	// One comma-separated entry: natskv skips its empty items, as
	// nats.go does.
	list := n.servers()
	if err := natskv.CheckServers([]string{list}); err != nil {
		return nil, &serverFlagError{from: n.serverSource(), err: err}
	}
	if (*n.tlsCert == "") != (*n.tlsKey == "") {
		return nil, &serverFlagError{from: "-tlscert and -tlskey", err: errors.New("a client certificate goes with its key: give both")}
	}
	servers := strings.Split(list, ",")
	opts := natskv.Options{Servers: []string{list}, CredsFile: *n.creds, Timeout: *n.timeout, Name: name, Domain: *n.domain,
		CAFile: *n.tlsCA, CertFile: *n.tlsCert, KeyFile: *n.tlsKey}
	if err := opts.CheckCreds(); err != nil {
		return nil, err
	}
	conn := natskv.New(opts)
	if err := conn.Connect(ctx); err != nil {
		return nil, fmt.Errorf("cannot reach NATS at %s: %w", natskv.RedactServers(servers), err)
	}
	return conn, nil
}

// serverFlagError is a -server (or $NATS_URL) that is no list of server
// URLs: a bad command line, not a server to wait for.
type serverFlagError struct {
	from string // "-server", or "-server ($NATS_URL)" for its default
	err  error  // a *natskv.ServerURLError
}

func (e *serverFlagError) Error() string {
	var se *natskv.ServerURLError
	if errors.As(e.err, &se) {
		return fmt.Sprintf("%s: bad server URL %q: %s", e.from, se.URL, se.Reason)
	}
	return e.from + ": " + e.err.Error()
}

func (e *serverFlagError) Unwrap() error { return e.err }

// connectExit is the exit code for an error of natsFlags.connect:
// exitUsage for a -server that is no server URL, exitFailure for
// credentials that cannot be used, else exitUnreachable.
func connectExit(err error) int {
	var ce *natskv.CredsError
	var se *serverFlagError
	switch {
	case errors.As(err, &se):
		return exitUsage
	case errors.As(err, &ce):
		return exitFailure
	}
	return exitUnreachable
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

// serverSource names where servers() took the URLs from, for an error.
func (n natsFlags) serverSource() string {
	switch {
	case flagSet(n.fs, "server"):
		return "-server"
	case os.Getenv("NATS_URL") != "":
		return "-server ($NATS_URL)"
	}
	return "-server"
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
