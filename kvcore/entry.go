package kvcore

import (
	"strconv"
	"time"
)

// Entry is the value of one key at one version.
type Entry struct {
	Key     string
	Value   []byte
	Version Version
	// Created is when the backend stored this version; zero when unknown.
	Created time.Time
}

// Op is the kind of change an [Update] carries.
type Op uint8

// Operations. Purge is NATS-specific (the key's history is dropped too);
// consumers without purge semantics treat it exactly like OpDelete.
const (
	OpPut Op = iota + 1
	OpDelete
	OpPurge
)

// String returns "put", "delete", "purge" or "op(N)".
func (o Op) String() string {
	switch o {
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	case OpPurge:
		return "purge"
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// Update is one change of one key: a put of Value, or a delete/purge marker.
// Value is nil for OpDelete and OpPurge. Updates of one watch arrive in
// version order.
type Update struct {
	Op      Op
	Key     string
	Value   []byte
	Version Version
	// Created is when the backend stored the change; zero when unknown.
	Created time.Time
}

// IsRemoval reports whether the update removes its key (delete or purge).
func (u Update) IsRemoval() bool { return u.Op == OpDelete || u.Op == OpPurge }

// Entry returns the entry a put establishes. It is meaningful only for OpPut.
func (u Update) Entry() Entry {
	return Entry{Key: u.Key, Value: u.Value, Version: u.Version, Created: u.Created}
}
