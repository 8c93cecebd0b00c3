package kvcore

import "context"

// Retainer is implemented by stores that can tell, without opening a
// watch, whether they still retain every update after a cursor: whether a
// delta watch from it would see them all rather than fail with
// [ErrCursorExpired]. A host that obtained a fold from elsewhere (an
// imported artifact) asks before trusting its cursor.
type Retainer interface {
	// Retains reports whether every update after from is still retained;
	// a none cursor asks about the whole history.
	Retains(ctx context.Context, from Cursor) (bool, error)
}
