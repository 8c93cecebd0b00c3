package natskv

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// Defaults of [Options].
const (
	DefaultTimeout       = 30 * time.Second
	DefaultReconnectWait = 2 * time.Second
	DefaultHeartbeat     = 5 * time.Second
	DefaultPingInterval  = 5 * time.Second
	// DefaultReconnectJitter spreads a fleet's reconnects and consumer
	// re-creations after an outage over a second.
	DefaultReconnectJitter = time.Second
)

// maxPingsOut is how many pings may go unanswered before the connection
// gives its server up.
const maxPingsOut = 2

// Options configure a [Conn]. The zero value connects to
// nats://127.0.0.1:4222 without authentication.
//
// Credentials are taken from the first of these that is set: Creds,
// CredsFile, then a user name and password embedded in a server URL; with
// none of them the connection is anonymous. User information is always
// stripped from the URLs that are dialled.
type Options struct {
	// Servers are the URLs of the servers (nats://host:port, or tls:// to
	// require TLS, ws:// or wss:// for websocket, or host:port; an entry
	// may list several, comma-separated: see [CheckServers]); the client
	// picks one and fails over to the others. A URL may carry
	// "user:password@" or "token@", the same on every URL that has one.
	Servers []string
	// Creds is the content of a .creds file (user JWT and nkey seed),
	// base64-encoded with the standard alphabet.
	Creds string
	// CredsFile is the path of a .creds file.
	CredsFile string

	// TLS, when set, is the client TLS configuration (it is cloned).
	TLS *tls.Config
	// CAFile is a PEM file of CAs that verify the servers.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key.
	CertFile, KeyFile string

	// Name is the connection name servers show in monitoring.
	Name string
	// Timeout bounds every operation: each read, write and purge, each
	// watch setup and consumer re-creation, each stream lookup, and each
	// wait for the next message of a scan. A half-dead TCP connection
	// otherwise parks a caller forever. Default [DefaultTimeout].
	Timeout time.Duration
	// ReconnectWait is the pause between reconnect attempts to one server
	// (default [DefaultReconnectWait]). The connection never gives up
	// reconnecting; watches resume once it is back.
	ReconnectWait time.Duration
	// Heartbeat is the idle heartbeat of watch and scan consumers (default
	// [DefaultHeartbeat]). A watch whose consumer stays silent for two
	// heartbeats re-creates it.
	Heartbeat time.Duration
	// PingInterval is how often the connection pings its server (default
	// [DefaultPingInterval]); after two pings unanswered it gives the
	// server up and connects to another. A server that goes silent
	// without closing the connection (its host frozen, a link cut, no TCP
	// reset) is left within two or three intervals, not after the
	// minutes the operating system's timeouts take.
	PingInterval time.Duration

	// ReconnectJitter bounds a random delay added to each pause between
	// reconnect attempts, and waited (at random, up to it) by every watch
	// before it re-creates its consumer after a reconnect, so a fleet that
	// lost its server does not come back in one burst. Default
	// [DefaultReconnectJitter]; negative for none.
	ReconnectJitter time.Duration
	// Domain is the JetStream domain the buckets live in ("" for the
	// domain of the server connected to). An agent connected to a leaf
	// node reads a bucket of the hub's JetStream through the hub's domain.
	Domain string

	// Logger receives warnings and watch recovery events (default: none),
	// and the errors the server reports outside any request (a
	// permissions violation), each once a minute while it repeats.
	// Without a Logger, nats.go writes those to stderr.
	Logger *slog.Logger
	// OnReattach, if set, hears every attempt of a running watch to
	// re-create its consumer (after a reconnect, a server restart, a
	// leader change, missed heartbeats): err is the attempt's failure, nil
	// once it succeeded. A caller reporting health uses it to tell a watch
	// that cannot reattach (a consumer limit reached, the stream's leader
	// missing) from one that is merely quiet. Watches of the same bucket
	// and scope are not told apart: [WithReattach] reports one watch's
	// attempts. It is called from the watch's goroutine and must not block.
	OnReattach func(bucket string, scope kvcore.Scope, err error)
}

// String describes the options without secrets: credentials are reported
// by presence only and passwords in URLs are masked.
func (o Options) String() string {
	var b strings.Builder
	b.WriteString("natskv.Options{Servers:[")
	for i, s := range o.Servers {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(redactServers(s))
	}
	b.WriteString("]")
	if o.Creds != "" {
		b.WriteString(" Creds:[redacted]")
	}
	if o.CredsFile != "" {
		b.WriteString(" CredsFile:[redacted]")
	}
	if o.TLS != nil || o.CAFile != "" || o.CertFile != "" {
		b.WriteString(" TLS:on")
	}
	if o.Name != "" {
		b.WriteString(" Name:" + o.Name)
	}
	if o.Timeout != 0 {
		b.WriteString(" Timeout:" + o.Timeout.String())
	}
	if o.Domain != "" {
		b.WriteString(" Domain:" + o.Domain)
	}
	b.WriteString("}")
	return b.String()
}

// LogValue makes slog print [Options.String], never the credentials.
func (o Options) LogValue() slog.Value { return slog.StringValue(o.String()) }

// RedactServers lists entries of [Options.Servers] for logs and errors,
// comma-separated, with every password and token masked.
func RedactServers(servers []string) string {
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = redactServers(s)
	}
	return strings.Join(out, ", ")
}

// redactServers renders an entry of [Options.Servers] (one URL or a
// comma-separated list) for logs and errors, with every password and token
// masked. Without an '@' there is no user information to hide.
func redactServers(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = redactURL(p)
	}
	return strings.Join(parts, ",")
}

// redactURL masks the password of a URL, or its user when it has no
// password (a token, as nats.go reads it). What does not parse as a URL
// with a host (a bad escape, no scheme, a password cut at a comma) shows
// nothing before its last '@', and nothing at all without one.
func redactURL(s string) string {
	u, err := url.Parse(strings.TrimSpace(s))
	if err == nil && u.Host != "" && u.Opaque == "" {
		if _, ok := u.User.Password(); u.User != nil && !ok {
			u.User = url.User("xxxxx")
		}
		return u.Redacted()
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		return "[redacted]" + s[i:]
	}
	return "[redacted]"
}

func (o Options) withDefaults() Options {
	if len(o.Servers) == 0 {
		o.Servers = []string{nats.DefaultURL}
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.ReconnectWait <= 0 {
		o.ReconnectWait = DefaultReconnectWait
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.PingInterval <= 0 {
		o.PingInterval = DefaultPingInterval
	}
	switch {
	case o.ReconnectJitter == 0:
		o.ReconnectJitter = DefaultReconnectJitter
	case o.ReconnectJitter < 0:
		o.ReconnectJitter = 0
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// natsOptions turns o (with defaults applied) into nats.go options.
func (o Options) natsOptions() (nats.Options, error) {
	no := nats.GetDefaultOptions()
	no.Name = o.Name
	no.MaxReconnect = -1
	no.ReconnectWait = o.ReconnectWait
	no.ReconnectJitter = o.ReconnectJitter
	no.ReconnectJitterTLS = o.ReconnectJitter
	no.AllowReconnect = true
	// A server that refuses the credentials twice in a row would
	// otherwise close the connection for good: credentials rotated on the
	// server before the host, or a user revoked and restored, must not
	// leave an agent disconnected until it is restarted.
	no.IgnoreAuthErrorAbort = true
	no.PingInterval = o.PingInterval
	no.MaxPingsOut = maxPingsOut
	if o.Logger.Handler() != slog.DiscardHandler {
		// A caller without a logger (a command line tool) keeps
		// nats.go's default, which writes these errors to stderr.
		no.AsyncErrorCB = asyncErrors(o.Logger)
		no.ConnectedCB, no.DisconnectedErrCB, no.ReconnectedCB = connectionEvents(o.Logger)
	}

	servers, err := parseServers(o.Servers)
	if err != nil {
		return no, fmt.Errorf("%w: %w", kvcore.ErrConnectionFailed, err)
	}
	var user *url.Userinfo
	for _, s := range servers {
		if s.user != nil && s.user.Username() != "" && user == nil {
			user = s.user
		}
		no.Servers = append(no.Servers, s.dial)
	}
	if len(no.Servers) == 0 {
		return no, fmt.Errorf("%w: no server URL", kvcore.ErrConnectionFailed)
	}

	auth, err := o.credsOption()
	if err != nil {
		return no, fmt.Errorf("%w: %w", kvcore.ErrConnectionFailed, err)
	}
	if auth == nil && user != nil {
		if password, ok := user.Password(); ok {
			auth = nats.UserInfo(user.Username(), password)
		} else {
			auth = nats.Token(user.Username()) // nats://TOKEN@host, as nats.go reads it
		}
	}
	opts := []nats.Option{auth}
	if o.TLS != nil {
		opts = append(opts, nats.Secure(o.TLS.Clone()))
	}
	if o.CAFile != "" {
		opts = append(opts, nats.RootCAs(o.CAFile))
	}
	if o.CertFile != "" || o.KeyFile != "" {
		opts = append(opts, nats.ClientCert(o.CertFile, o.KeyFile))
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&no); err != nil {
			return no, fmt.Errorf("%w: %v", kvcore.ErrConnectionFailed, err)
		}
	}
	return no, nil
}

// CheckCreds reads and parses the credentials, [Options.Creds] or else
// [Options.CredsFile], as connecting would (nats.go reads them only when a
// server asks it to sign), without dialling: a *[CredsError] when they
// cannot be used, nil when they can or there are none. [Conn.Connect]
// checks them so before it dials.
func (o Options) CheckCreds() error {
	_, err := o.credsOption()
	return err
}

// credsOption is the nats.go option that authenticates with o.Creds or
// o.CredsFile, nil with neither. It runs the option's callbacks once, so
// that credentials nats.go cannot read or parse are a *CredsError now
// rather than a failed connection to every server.
func (o Options) credsOption() (nats.Option, error) {
	var auth nats.Option
	switch {
	case o.Creds != "":
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(o.Creds))
		if err != nil {
			return nil, &CredsError{Err: fmt.Errorf("not valid base64: %v", err)}
		}
		if !utf8.Valid(raw) {
			return nil, &CredsError{Err: errors.New("decoded, not UTF-8 text")}
		}
		auth = nats.UserCredentialBytes(raw)
	case o.CredsFile != "":
		auth = nats.UserCredentials(o.CredsFile)
	default:
		return nil, nil
	}
	var probe nats.Options
	err := auth(&probe)
	if err == nil {
		// nats.go sends what it reads as the user JWT: a file without one
		// (an nkey seed alone) would send its seed, in clear.
		var jwt string
		if jwt, err = probe.UserJWT(); err == nil && !isJWT(jwt) {
			what := "the content"
			if o.Creds == "" {
				what = o.CredsFile
			}
			err = fmt.Errorf("%s holds no user JWT: a .creds file has a user's JWT and nkey seed, as nsc writes it (an nkey seed alone is not one)", what)
		}
	}
	if err == nil {
		_, err = probe.SignatureCB([]byte("slipstream")) // reads the nkey seed
	}
	if err != nil {
		return nil, &CredsError{File: o.CredsFile, Err: err}
	}
	return auth, nil
}

// isJWT reports whether s has a JWT's form: three non-empty parts joined by
// dots, without spaces.
func isJWT(s string) bool {
	parts := strings.Split(s, ".")
	return len(parts) == 3 && !slices.Contains(parts, "") && !strings.ContainsAny(s, " \t\r\n")
}
