package natskv

import (
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// Headers of KV records and JetStream control messages.
const (
	hdrOperation     = "KV-Operation"       // DEL or PURGE, written by clients
	hdrMarkerReason  = "Nats-Marker-Reason" // MaxAge, Purge or Remove, written by the server
	hdrMsgSize       = "Nats-Msg-Size"      // payload size of a headers-only delivery
	hdrStatus        = "Status"
	hdrDescription   = "Description"
	hdrLastConsumer  = "Nats-Last-Consumer"
	hdrLastStream    = "Nats-Last-Stream"
	hdrStalled       = "Nats-Consumer-Stalled"
	statusControl    = "100" // idle heartbeat or flow control request
	statusConflict   = "409"
	opDelete         = "DEL"
	opPurge          = "PURGE"
	reasonMaxAge     = "MaxAge"
	reasonPurge      = "Purge"
	reasonRemove     = "Remove"
	descConsumerGone = "Consumer Deleted"
)

// opOf returns the operation a KV record carries: a client's KV-Operation
// header, else a server marker's reason (an expiry or purge marker is a purge,
// a removal marker a delete), else a put.
func opOf(h nats.Header) kvcore.Op {
	if len(h) == 0 {
		return kvcore.OpPut
	}
	switch h.Get(hdrOperation) {
	case opDelete:
		return kvcore.OpDelete
	case opPurge:
		return kvcore.OpPurge
	}
	switch h.Get(hdrMarkerReason) {
	case reasonMaxAge, reasonPurge:
		return kvcore.OpPurge
	case reasonRemove:
		return kvcore.OpDelete
	}
	return kvcore.OpPut
}

// decodeMsg turns a delivered KV record into an update. It reports false for
// a subject outside the bucket's keyspace pre. The version is the revision in
// the reply subject, or unknown when there is none (never a made-up 0).
// The delivery metadata is returned either way (zero when the reply subject
// is not an ACK subject).
func decodeMsg(pre string, m *nats.Msg) (kvcore.Update, ackMeta, bool) {
	meta, hasMeta := parseAck(m.Reply)
	key, ok := keyOf(pre, m.Subject)
	if !ok {
		return kvcore.Update{}, meta, false
	}
	u := kvcore.Update{Op: opOf(m.Header), Key: key}
	if u.Op == kvcore.OpPut {
		u.Value = m.Data
	}
	if hasMeta {
		u.Version = kvcore.RevisionVersion(meta.stream)
		u.Created = time.Unix(0, meta.timestamp)
	}
	return u, meta, true
}

// keyOf returns the key a record's subject names in the bucket's keyspace
// pre, or false for a subject outside it.
func keyOf(pre, subject string) (string, bool) {
	key, ok := strings.CutPrefix(subject, pre)
	return key, ok && key != ""
}

// control classifies a message without payload that carries a Status
// header: JetStream's heartbeats, flow control requests and notices.
// A message whose reply subject is an ACK subject is a delivery whatever
// its headers say: control messages never carry one, while a KV record
// may carry any header its writer chose, "Status: 100" included.
type control uint8

const (
	notControl control = iota
	ctrlFlowControl
	ctrlHeartbeat
	ctrlConsumerGone
	ctrlOther
)

func controlOf(m *nats.Msg) control {
	if len(m.Data) > 0 || len(m.Header) == 0 {
		return notControl
	}
	if _, delivery := parseAck(m.Reply); delivery {
		return notControl
	}
	switch m.Header.Get(hdrStatus) {
	case "":
		return notControl
	case statusControl:
		if m.Reply != "" {
			return ctrlFlowControl
		}
		return ctrlHeartbeat
	case statusConflict:
		if strings.HasPrefix(m.Header.Get(hdrDescription), descConsumerGone) {
			return ctrlConsumerGone
		}
	}
	return ctrlOther
}
