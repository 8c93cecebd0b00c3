package natskv

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// JetStream API error codes this package branches on.
const (
	codeStreamNotFound     = 10059
	codeStreamExists       = 10058
	codeWrongLastSequence  = 10071
	codeWrongLastSeqR      = 10164 // replicated streams report CAS conflicts with this code
	codeStoreFailed        = 10077 // "maximum bytes exceeded" with discard new
	codeStreamCreate       = 10049 // a stream create failed, for any reason the description gives
	codeMaxConsumers       = 10026
	codeJetStreamNotEnable = 10076
)

// apiCode returns the JetStream error code carried by err, or 0.
func apiCode(err error) int {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return int(apiErr.ErrorCode)
	}
	return 0
}

func isWrongLastSequence(err error) bool {
	c := apiCode(err)
	return c == codeWrongLastSequence || c == codeWrongLastSeqR
}

// oncePrefixed says "nats: " once where nats.go says it twice: a publish
// the server rejects (a KV put, create or update) reads "nats: nats: API
// error: …". The error stays in the chain.
func oncePrefixed(err error) error {
	const twice = "nats: nats: "
	if msg := err.Error(); strings.Contains(msg, twice) {
		return &natsError{msg: strings.ReplaceAll(msg, twice, "nats: "), err: err}
	}
	return err
}

// natsError is a nats.go error with its text corrected.
type natsError struct {
	msg string
	err error
}

func (e *natsError) Error() string { return e.msg }
func (e *natsError) Unwrap() error { return e.err }

// mapErr translates a nats.go error into the kvcore error a caller branches
// on, keeping the original text. It is the only place where JetStream error
// codes meet kvcore sentinels.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	err = oncePrefixed(err)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return kvcore.ErrNotFound
	case errors.Is(err, nats.ErrStreamNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("%w: %v", kvcore.ErrBucketNotFound, err)
	case errors.Is(err, jetstream.ErrInvalidKey):
		return fmt.Errorf("%w: %v", kvcore.ErrInvalidKey, err)
	case apiCode(err) == codeStoreFailed:
		return fmt.Errorf("%w: %v", kvcore.ErrBucketFull, err)
	case isWrongLastSequence(err), errors.Is(err, jetstream.ErrKeyExists):
		return fmt.Errorf("%w: %v", kvcore.ErrRevisionMismatch, err)
	case errors.Is(err, nats.ErrConnectionClosed):
		return fmt.Errorf("%w: %v", kvcore.ErrNotConnected, err)
	case isTimeout(err):
		return fmt.Errorf("%w: %w", kvcore.ErrTimeout, err)
	}
	return err
}

// isTimeout reports whether err is a deadline, [Options.Timeout] or the
// caller's, or a nats.go request timeout. A cancellation is not a timeout.
func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
}

// Which limit refused a consumer; see [ConsumerLimitError].
const (
	// LimitUnknown: the stream and account could not be looked up.
	LimitUnknown ConsumerLimit = iota
	// LimitStream is the stream's max_consumers.
	LimitStream
	// LimitAccount is the account's JetStream max_consumers (per stream).
	LimitAccount
	// LimitServerDefault is the server's jetstream.limits.default_max_consumers,
	// which applies when neither the stream nor the account sets one.
	LimitServerDefault
)

// ConsumerLimit names the limit behind a [ConsumerLimitError].
type ConsumerLimit int

func (l ConsumerLimit) String() string {
	switch l {
	case LimitStream:
		return "the stream's max_consumers"
	case LimitAccount:
		return "the account's JetStream max_consumers"
	case LimitServerDefault:
		return "the server's jetstream.limits.default_max_consumers"
	}
	return "a consumer limit (the stream's max_consumers, the account's, or the server's default_max_consumers)"
}

// ConsumerLimitError is the failure of a watch or scan whose consumer the
// server refused because the bucket's stream has as many consumers as a
// limit allows (JetStream error 10026, "maximum consumers limit reached").
// Every watch of every agent and every running Keys or Scan holds one
// consumer of the bucket. Retrying helps once others are gone; otherwise the
// limit must grow or the readers spread out. Find it with errors.As; its
// message leaves the bucket to the error wrapping it.
type ConsumerLimitError struct {
	Bucket string
	Stream string
	// Limit is which limit was reached, Max its value (0 when unknown) and
	// Consumers how many consumers the stream had when asked (-1 when
	// unknown).
	Limit     ConsumerLimit
	Max       int
	Consumers int
	Err       error // the server's error
}

func (e *ConsumerLimitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: ", e.Err)
	if e.Consumers >= 0 {
		fmt.Fprintf(&b, "stream %s has %d consumers, ", e.Stream, e.Consumers)
	}
	fmt.Fprintf(&b, "the limit is %s", e.Limit)
	if e.Max > 0 {
		fmt.Fprintf(&b, " (%d)", e.Max)
	}
	b.WriteString("; ")
	switch e.Limit {
	case LimitStream:
		fmt.Fprintf(&b, "raise it (nats stream edit %s --max-consumers N)", e.Stream)
	case LimitAccount:
		b.WriteString("raise the account's JetStream max_consumers (or its tier's)")
	case LimitServerDefault:
		fmt.Fprintf(&b, "raise jetstream.limits.default_max_consumers on the servers, or set the stream's max_consumers (nats stream edit %s --max-consumers N)", e.Stream)
	default:
		b.WriteString("raise the limit")
	}
	b.WriteString(", or spread the hosts: one mirrored bucket per region, or leaf nodes with their own mirror (README: Running a fleet)")
	return b.String()
}

func (e *ConsumerLimitError) Unwrap() error { return e.Err }

// CredsError is NATS credentials that cannot be used: [Options.Creds] that
// do not decode, or an [Options.CredsFile] that cannot be read or holds no
// valid nkey seed. It is found before dialling ([Options.CheckCreds],
// [Conn.Connect]): a configuration to fix, not a server to wait for. Find
// it with errors.As.
type CredsError struct {
	File string // Options.CredsFile, "" for Options.Creds
	Err  error  // why; nats.go's errors about a file name it
}

func (e *CredsError) Error() string {
	why := strings.TrimPrefix(e.Err.Error(), "nats: ") // said once
	if e.File == "" {
		return "natskv: nats creds: " + why
	}
	return "natskv: nats creds file: " + why
}

func (e *CredsError) Unwrap() error { return e.Err }
