package natskv

import "testing"

// Ports of upstream ack_subject_* (spec §5.5, §11.F 101–105).
func TestParseAck(t *testing.T) {
	tests := []struct {
		name    string
		reply   string
		ok      bool
		stream  uint64
		dseq    uint64
		ts      int64
		pending uint64
	}{
		{"legacy format", "$JS.ACK.KV_certs.cons.1.42.7.1700000000000000000.0", true, 42, 7, 1700000000000000000, 0},
		{"modern format with domain and account", "$JS.ACK.hub.AABBCC.KV_certs.cons.1.42.7.1700000000000000000.0", true, 42, 7, 1700000000000000000, 0},
		{"modern format with trailing token", "$JS.ACK.hub.AABBCC.KV_certs.cons.1.99.7.1700000000000000000.0.rng", true, 99, 7, 1700000000000000000, 0},
		{"last token is pending, not the sequence", "$JS.ACK.KV_certs.cons.1.42.7.1700000000000000000.13", true, 42, 7, 1700000000000000000, 13},
		{"empty", "", false, 0, 0, 0, 0},
		{"not an ack subject", "not.an.ack.subject", false, 0, 0, 0, 0},
		{"too few tokens", "$JS.ACK.too.few.tokens", false, 0, 0, 0, 0},
		{"sequence not a number", "$JS.ACK.s.c.1.notnum.7.0.0", false, 0, 0, 0, 0},
		{"ten tokens", "$JS.ACK.x.KV_certs.cons.1.42.7.1700000000000000000.0", false, 0, 0, 0, 0},
		{"wrong prefix", "$JS.NAK.KV_certs.cons.1.42.7.1700000000000000000.0", false, 0, 0, 0, 0},
		{"inbox", "_INBOX.abc.def", false, 0, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, ok := parseAck(tc.reply)
			if ok != tc.ok {
				t.Fatalf("parseAck(%q) ok = %v, want %v", tc.reply, ok, tc.ok)
			}
			if !ok {
				return
			}
			if m.stream != tc.stream || m.consumer != tc.dseq || m.timestamp != tc.ts || m.pending != tc.pending {
				t.Fatalf("parseAck(%q) = %+v", tc.reply, m)
			}
		})
	}
}

func TestParseAckDoesNotAllocate(t *testing.T) {
	reply := "$JS.ACK.hub.AABBCC.KV_certs.cons.1.42.7.1700000000000000000.0.rng"
	if n := testing.AllocsPerRun(100, func() { parseAck(reply) }); n != 0 {
		t.Fatalf("parseAck allocates %v times", n)
	}
}

func FuzzParseAck(f *testing.F) {
	f.Add("$JS.ACK.KV_certs.cons.1.42.7.1700000000000000000.0")
	f.Add("$JS.ACK.hub.AABBCC.KV_certs.cons.1.99.7.1700000000000000000.0.rng")
	f.Add("$JS.ACK....")
	f.Fuzz(func(t *testing.T, reply string) {
		m, ok := parseAck(reply)
		if !ok && m != (ackMeta{}) {
			t.Fatalf("rejected %q but returned %+v", reply, m)
		}
	})
}
