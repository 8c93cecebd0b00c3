package natskv

import "strconv"

// ackMeta is what the reply ("ACK") subject of a JetStream delivery says about
// the message it came with.
type ackMeta struct {
	stream    uint64 // stream sequence, which is the KV revision
	consumer  uint64 // delivery sequence of the consumer
	timestamp int64  // when the message was stored, ns since the Unix epoch
	pending   uint64 // messages still pending for the consumer after this one
}

// parseAck decodes a reply subject in either JetStream form:
//
//	$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>                  (9 tokens)
//	$JS.ACK.<domain>.<acc>.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>[.…] (≥ 11)
//
// The last token of the long form is a random suffix or num_pending depending
// on its length, so fields are taken by position from the start, never from
// the end. It reports false for anything else and does not allocate.
func parseAck(reply string) (ackMeta, bool) {
	var tok [11]string
	n := 0
	start := 0
	for i := 0; i <= len(reply); i++ {
		if i < len(reply) && reply[i] != '.' {
			continue
		}
		if n < len(tok) {
			tok[n] = reply[start:i]
		}
		n++
		start = i + 1
	}
	if n < 9 || tok[0] != "$JS" || tok[1] != "ACK" {
		return ackMeta{}, false
	}
	var f []string // delivered, sseq, dseq, ts, pending
	switch {
	case n == 9:
		f = tok[4:9]
	case n >= 11:
		f = tok[6:11]
	default:
		return ackMeta{}, false
	}
	var m ackMeta
	var err error
	if m.stream, err = strconv.ParseUint(f[1], 10, 64); err != nil {
		return ackMeta{}, false
	}
	if m.consumer, err = strconv.ParseUint(f[2], 10, 64); err != nil {
		return ackMeta{}, false
	}
	if m.timestamp, err = strconv.ParseInt(f[3], 10, 64); err != nil {
		return ackMeta{}, false
	}
	if m.pending, err = strconv.ParseUint(f[4], 10, 64); err != nil {
		return ackMeta{}, false
	}
	return m, true
}
