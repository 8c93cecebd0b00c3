package natstest

import (
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// UserPassword makes the server require the given user name and password.
func UserPassword(user, password string) Option {
	return func(o *server.Options) {
		o.Username = user
		o.Password = password
	}
}

// Accounts is decentralized auth (operator mode) made by [Operator].
type Accounts struct {
	// Creds is the content of a user's .creds file (JWT and nkey seed) for an
	// account with JetStream enabled.
	Creds []byte
	// Option puts the server in operator mode with that account preloaded.
	Option Option
}

// AccountOption adjusts the JetStream limits of the account [Operator] creates.
type AccountOption func(*jwt.JetStreamLimits)

// MaxBytesRequired makes every stream of the account declare max_bytes, as
// hosted NATS (Synadia Cloud) accounts do.
func MaxBytesRequired() AccountOption {
	return func(l *jwt.JetStreamLimits) { l.MaxBytesRequired = true }
}

// Operator creates an operator, one JetStream-enabled account and one user of
// that account, with fresh keys, and returns the user's credentials and the
// server option that trusts the operator.
func Operator(tb testing.TB, opts ...AccountOption) Accounts {
	tb.Helper()
	must := func(err error) {
		if err != nil {
			tb.Fatalf("natstest: operator setup: %v", err)
		}
	}
	okp, err := nkeys.CreateOperator()
	must(err)
	opub, err := okp.PublicKey()
	must(err)
	oc := jwt.NewOperatorClaims(opub)
	ojwt, err := oc.Encode(okp)
	must(err)
	oclaims, err := jwt.DecodeOperatorClaims(ojwt)
	must(err)

	akp, err := nkeys.CreateAccount()
	must(err)
	apub, err := akp.PublicKey()
	must(err)
	ac := jwt.NewAccountClaims(apub)
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	for _, opt := range opts {
		opt(&ac.Limits.JetStreamLimits)
	}
	ajwt, err := ac.Encode(okp)
	must(err)

	ukp, err := nkeys.CreateUser()
	must(err)
	upub, err := ukp.PublicKey()
	must(err)
	ujwt, err := jwt.NewUserClaims(upub).Encode(akp)
	must(err)
	seed, err := ukp.Seed()
	must(err)
	creds, err := jwt.FormatUserConfig(ujwt, seed)
	must(err)

	// JetStream in operator mode needs a system account.
	skp, err := nkeys.CreateAccount()
	must(err)
	spub, err := skp.PublicKey()
	must(err)
	sjwt, err := jwt.NewAccountClaims(spub).Encode(okp)
	must(err)

	resolver := &server.MemAccResolver{}
	must(resolver.Store(apub, ajwt))
	must(resolver.Store(spub, sjwt))
	return Accounts{
		Creds: creds,
		Option: func(o *server.Options) {
			o.TrustedOperators = []*jwt.OperatorClaims{oclaims}
			o.AccountResolver = resolver
			o.SystemAccount = spub
		},
	}
}
