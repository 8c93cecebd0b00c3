package natskv

import (
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/slipstreamkv/slipstream/kvcore"
)

const legacyAck42 = "$JS.ACK.KV_certs.cons.1.42.7.1700000000000000000.0"

// Ports of upstream kv_message_* (§11.F 107–110), plus server markers.
func TestDecodeMsg(t *testing.T) {
	pre := subjectPrefix("certs")
	hdr := func(k, v string) nats.Header { return nats.Header{k: []string{v}} }
	tests := []struct {
		name    string
		msg     *nats.Msg
		ok      bool
		op      kvcore.Op
		value   string
		version uint64 // 0: unknown
	}{
		{"put without operation header", &nats.Msg{Subject: "$KV.certs.node.a", Reply: legacyAck42, Data: []byte("v1")}, true, kvcore.OpPut, "v1", 42},
		{"delete marker", &nats.Msg{Subject: "$KV.certs.node.a", Reply: legacyAck42, Header: hdr(hdrOperation, opDelete)}, true, kvcore.OpDelete, "", 42},
		{"purge marker", &nats.Msg{Subject: "$KV.certs.node.a", Reply: legacyAck42, Header: hdr(hdrOperation, opPurge)}, true, kvcore.OpPurge, "", 42},
		{"max-age marker", &nats.Msg{Subject: "$KV.certs.node.a", Reply: legacyAck42, Header: hdr(hdrMarkerReason, reasonMaxAge)}, true, kvcore.OpPurge, "", 42},
		{"purge-reason marker", &nats.Msg{Subject: "$KV.certs.node.a", Reply: legacyAck42, Header: hdr(hdrMarkerReason, reasonPurge)}, true, kvcore.OpPurge, "", 42},
		{"remove marker", &nats.Msg{Subject: "$KV.certs.node.a", Reply: legacyAck42, Header: hdr(hdrMarkerReason, reasonRemove)}, true, kvcore.OpDelete, "", 42},
		{"other headers are a put", &nats.Msg{Subject: "$KV.certs.node.a", Reply: legacyAck42, Header: hdr("X-Trace", "1"), Data: []byte("v")}, true, kvcore.OpPut, "v", 42},
		{"outside the keyspace", &nats.Msg{Subject: "$KV.other.node.a", Reply: legacyAck42}, false, 0, "", 0},
		{"bucket subject without key", &nats.Msg{Subject: "$KV.certs.", Reply: legacyAck42}, false, 0, "", 0},
		{"no reply gets the unknown version", &nats.Msg{Subject: "$KV.certs.node.a", Data: []byte("v1")}, true, kvcore.OpPut, "v1", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, _, ok := decodeMsg(pre, tc.msg)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if u.Key != "node.a" || u.Op != tc.op || string(u.Value) != tc.value {
				t.Fatalf("decoded %+v", u)
			}
			got, known := u.Version.Revision()
			if tc.version == 0 {
				if !u.Version.IsUnknown() {
					t.Fatalf("version = %v, want unknown (never a made-up 0)", u.Version)
				}
			} else if !known || got != tc.version {
				t.Fatalf("version = %v, want %d", u.Version, tc.version)
			}
		})
	}
}

func TestControlOf(t *testing.T) {
	status := func(code, desc string) nats.Header {
		return nats.Header{hdrStatus: []string{code}, hdrDescription: []string{desc}}
	}
	tests := []struct {
		name string
		msg  *nats.Msg
		want control
	}{
		{"heartbeat", &nats.Msg{Header: status("100", "Idle Heartbeat")}, ctrlHeartbeat},
		{"flow control", &nats.Msg{Reply: "$JS.FC.x", Header: status("100", "FlowControl Request")}, ctrlFlowControl},
		{"consumer deleted", &nats.Msg{Header: status("409", "Consumer Deleted")}, ctrlConsumerGone},
		{"other status", &nats.Msg{Header: status("409", "Something Else")}, ctrlOther},
		{"delete marker", &nats.Msg{Reply: legacyAck42, Header: nats.Header{hdrOperation: []string{opDelete}}}, notControl},
		{"empty value", &nats.Msg{Reply: legacyAck42}, notControl},
		{"value", &nats.Msg{Reply: legacyAck42, Data: []byte("x"), Header: status("100", "")}, notControl},
		// Any writer may put these headers on a record: a delivery stays a delivery.
		{"empty record with a heartbeat's headers", &nats.Msg{Reply: legacyAck42, Header: status("100", "Idle Heartbeat")}, notControl},
		{"empty record with a consumer-deleted status", &nats.Msg{Reply: legacyAck42, Header: status("409", "Consumer Deleted")}, notControl},
	}
	for _, tc := range tests {
		if got := controlOf(tc.msg); got != tc.want {
			t.Errorf("%s: controlOf = %v, want %v", tc.name, got, tc.want)
		}
	}
}
