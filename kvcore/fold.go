package kvcore

import (
	"context"
	"slices"
)

// Fold is the durable local copy of a bucket: the state produced by folding
// its updates in version order, plus the cursor that state is valid at.
// The snapshot package implements it (an append log with an in-memory map, and
// an on-disk LSM).
//
// Invariants every implementation holds:
//   - Apply persists the data and the cursor in one durable step: after a
//     crash at any point, the reopened fold's cursor never names an update
//     whose effect it lacks (it may hold data ahead of its cursor).
//   - The state is a pure function of the updates: replaying them from a none
//     cursor gives an identical fold.
//
// Apply, Export and Close must not be called concurrently with each other;
// Get and Range are safe to call concurrently with them unless the
// implementation says otherwise.
type Fold interface {
	// Cursor is the cursor of the last successful Apply (none for a fresh fold).
	Cursor() Cursor
	// Apply folds updates in order (put = upsert, empty values included;
	// delete and purge = remove) and persists cursor with them. An empty
	// batch still advances the cursor.
	Apply(ctx context.Context, updates []Update, cursor Cursor) error
	// Get returns the entry of key, or [ErrNotFound]. Empty values are entries.
	Get(key string) (Entry, error)
	// Range calls fn for every entry whose key starts with prefix ("" = all)
	// and sorts strictly after after ("" = from the first), in ascending
	// byte order of keys, without loading them all at once. It stops at, and
	// returns, the first error fn returns. after lets a caller page through
	// a fold without rescanning what it has seen.
	Range(ctx context.Context, prefix, after string, fn func(Entry) error) error
	// Export writes a self-verifying copy of the fold into dir (which must be
	// absent or empty) for import on another host, and returns the cursor the
	// copy is at.
	Export(ctx context.Context, dir string) (Cursor, error)
	// Close releases the fold's files.
	Close() error
}

// StaleKeys returns the keys the fold holds under any of prefixes that are not
// in live, sorted and without duplicates. It streams the fold with Range, so
// its memory is bounded by the stale set. It is the diff a watch runs after
// [ErrCursorExpired] to turn keys deleted during the gap into synthetic deletes
// before re-listing.
func StaleKeys(ctx context.Context, f Fold, prefixes []string, live map[string]struct{}) ([]string, error) {
	return staleKeys(ctx, f, prefixes, func(e Entry) bool {
		_, ok := live[e.Key]
		return ok
	})
}

// staleKeys is StaleKeys with live asked about each entry the fold holds.
func staleKeys(ctx context.Context, f Fold, prefixes []string, live func(e Entry) bool) ([]string, error) {
	var stale []string
	for _, p := range prefixes {
		err := f.Range(ctx, p, "", func(e Entry) error {
			if !live(e) {
				stale = append(stale, e.Key)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.Sort(stale)
	return slices.Compact(stale), nil
}
