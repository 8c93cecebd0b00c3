package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// LeaseRecord is the value of an export lease key: compact JSON, the
// Rust crate's LeaseRecord. The time to live lives in the value (the
// store's own TTL is not used): a record whose expiry has passed may be
// taken over.
type LeaseRecord struct {
	HolderID       string `json:"holder_id"`
	AcquiredAtUnix uint64 `json:"acquired_at_unix"`
	ExpiresAtUnix  uint64 `json:"expires_at_unix"`
	// CompletedCursorHex is the cursor the round exported ("" until then).
	CompletedCursorHex string `json:"completed_cursor_hex,omitempty"`
	// CompletedAtUnix is when the round completed (nil until then).
	CompletedAtUnix *uint64 `json:"completed_at_unix,omitempty"`
}

// Lease is a fleet-wide lease on a KV key that lets one holder at a time
// run an export round (upstream spec §9.9). It de-duplicates work only:
// the pointer's compare-and-swap keeps publishing correct without it.
type Lease struct {
	store  kvcore.Store
	key    string
	holder string
	log    *slog.Logger
	now    func() time.Time
}

// NewLease returns the lease stored under key in store, taken as holder.
func NewLease(store kvcore.Store, key, holder string, log *slog.Logger) *Lease {
	if log == nil {
		log = slog.Default()
	}
	return &Lease{store: store, key: key, holder: holder, log: log.With("lease", key), now: time.Now}
}

// unixNow is the wall clock in seconds, 0 before the epoch.
func (l *Lease) unixNow() uint64 {
	s := l.now().Unix()
	if s < 0 {
		l.log.Warn("the clock is before 1970; lease times start at 0")
		return 0
	}
	return uint64(s)
}

// TryAcquire takes the lease for ttl if it is free: never taken, abandoned,
// expired or unparseable. It returns nil (and no error) when someone else
// holds it or won the race for it.
func (l *Lease) TryAcquire(ctx context.Context, ttl time.Duration) (*LeaseGuard, error) {
	now := l.unixNow()
	rec := LeaseRecord{HolderID: l.holder, AcquiredAtUnix: now, ExpiresAtUnix: saturatingAdd(now, uint64(max(ttl, 0)/time.Second))}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	v, err := l.store.Create(ctx, l.key, b)
	if err == nil {
		return &LeaseGuard{l: l, rec: rec, version: v}, nil
	}
	if !errors.Is(err, kvcore.ErrAlreadyExists) {
		return nil, fmt.Errorf("transport: taking the lease %s: %w", l.key, err)
	}
	// Entry, not Get: an abandoned lease is an empty-value tombstone
	// whose version the takeover needs.
	cur, err := l.store.Entry(ctx, l.key)
	if errors.Is(err, kvcore.ErrNotFound) {
		return nil, nil // removed meanwhile; the next round tries again
	}
	if err != nil {
		return nil, fmt.Errorf("transport: reading the lease %s: %w", l.key, err)
	}
	var held LeaseRecord
	if json.Unmarshal(cur.Value, &held) == nil && held.ExpiresAtUnix > now {
		return nil, nil
	}
	v, err = l.store.Update(ctx, l.key, b, cur.Version)
	switch {
	case err == nil:
		return &LeaseGuard{l: l, rec: rec, version: v}, nil
	case errors.Is(err, kvcore.ErrRevisionMismatch), errors.Is(err, kvcore.ErrAlreadyExists), errors.Is(err, kvcore.ErrNotFound):
		return nil, nil
	}
	return nil, fmt.Errorf("transport: taking over the lease %s: %w", l.key, err)
}

// Current returns the lease's record, nil when it was never taken or was
// abandoned.
func (l *Lease) Current(ctx context.Context) (*LeaseRecord, error) {
	e, err := l.store.Get(ctx, l.key)
	if errors.Is(err, kvcore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("transport: reading the lease %s: %w", l.key, err)
	}
	var rec LeaseRecord
	if err := json.Unmarshal(e.Value, &rec); err != nil {
		return nil, fmt.Errorf("transport: lease key %s holds an unparseable value: %w", l.key, err)
	}
	return &rec, nil
}

// LeaseGuard is a held lease. The round it guards lasts until the
// record's expiry whether or not the guard is completed: only Abandon
// frees it earlier.
type LeaseGuard struct {
	l       *Lease
	rec     LeaseRecord
	version kvcore.Version
}

// Record is the lease record as taken.
func (g *LeaseGuard) Record() LeaseRecord { return g.rec }

// Complete records the cursor the round exported, keeping the expiry. A
// lease taken over meanwhile (the round overran) is only logged.
func (g *LeaseGuard) Complete(ctx context.Context, cursor kvcore.Cursor) error {
	rec := g.rec
	now := g.l.unixNow()
	rec.CompletedCursorHex, rec.CompletedAtUnix = cursor.Hex(), &now
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	v, err := g.l.store.Update(ctx, g.l.key, b, g.version)
	if errors.Is(err, kvcore.ErrRevisionMismatch) {
		g.l.log.Warn("the export round overran its lease; another holder took over", "holder", g.rec.HolderID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("transport: completing the lease %s: %w", g.l.key, err)
	}
	g.rec, g.version = rec, v
	return nil
}

// Abandon frees the lease at once (a compare-and-swap tombstone), so the
// next round's first taker wins. Failures are only logged.
func (g *LeaseGuard) Abandon(ctx context.Context) {
	if err := g.l.store.DeleteVersion(ctx, g.l.key, g.version); err != nil {
		g.l.log.Warn("could not abandon the export lease; it frees itself at its expiry", "err", err)
	}
}

func saturatingAdd(a, b uint64) uint64 {
	if a+b < a {
		return ^uint64(0)
	}
	return a + b
}
