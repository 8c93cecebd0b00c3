package natskv

import (
	"context"
	"errors"
	"fmt"

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

// mapErr translates a nats.go error into the kvcore error a caller branches
// on, keeping the original text. It is the only place where JetStream error
// codes meet kvcore sentinels.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return kvcore.ErrNotFound
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
