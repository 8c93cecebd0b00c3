package host

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

func newTestWriter(rec *logRecorder, now func() time.Time, l Limits) *lineWriter {
	sink := newLogSink(slog.New(rec), l.withDefaults(), now)
	return &lineWriter{sink: sink, level: slog.LevelWarn, stream: "stderr", keep: true}
}

func TestLineWriterSplitsAndTruncates(t *testing.T) {
	rec := &logRecorder{}
	w := newTestWriter(rec, time.Now, Limits{})
	for _, chunk := range []string{"one\ntw", "o\r\n", strings.Repeat("y", abi.MaxLogLen+10), "\n", "tail"} {
		w.Write([]byte(chunk))
	}
	w.endCall()
	want := []string{"WARN one", "WARN two", "WARN " + strings.Repeat("y", abi.MaxLogLen), "WARN tail"}
	if got := rec.lines(); !slices.Equal(got, want) {
		t.Fatalf("lines %q", got)
	}
}

func TestLineWriterKeepsTheCrashHeadline(t *testing.T) {
	w := newTestWriter(&logRecorder{}, time.Now, Limits{})
	w.Write([]byte("noise 1\nnoise 2\npanic: boom\n\ngoroutine 1 [running]:\nmain.f()\n"))
	if got := w.endCall(); !slices.Equal(got, []string{"panic: boom"}) {
		t.Fatalf("kept %q", got)
	}
	w.Write([]byte("plain message\n"))
	if got := w.endCall(); !slices.Equal(got, []string{"plain message"}) {
		t.Fatalf("kept %q after a new call", got)
	}
}

func TestLogSinkRateLimit(t *testing.T) {
	rec := &logRecorder{}
	now := time.Unix(0, 0)
	w := newTestWriter(rec, func() time.Time { return now }, Limits{LogPerSecond: 10, LogBurst: 5})
	for range 20 {
		w.Write([]byte("line\n"))
	}
	if n := rec.count("WARN line"); n != 5 {
		t.Fatalf("%d lines passed the burst of 5", n)
	}
	now = now.Add(time.Second) // 10 more tokens, capped at the burst
	for range 20 {
		w.Write([]byte("line\n"))
	}
	if n := rec.count("WARN line"); n != 10 {
		t.Fatalf("%d lines after a second, want 10", n)
	}
	if rec.count("dropped=15") != 1 {
		t.Fatalf("the first drop report is missing: %q", rec.lines())
	}
	w.sink.flush()
	if rec.count("dropped=15") != 2 {
		t.Fatalf("the end-of-call drop report is missing: %q", rec.lines())
	}
}

// FuzzLineWriter writes arbitrary guest output in arbitrary chunks: every
// line reaching the logger is at most abi.MaxLogLen bytes without a newline.
func FuzzLineWriter(f *testing.F) {
	f.Add([]byte("a\nb\r\nc"), uint8(1))
	f.Add([]byte(strings.Repeat("z", 5000)+"\nq"), uint8(7))
	f.Fuzz(func(t *testing.T, out []byte, chunk uint8) {
		rec := &logRecorder{}
		w := newTestWriter(rec, time.Now, Limits{LogBurst: 1 << 20})
		step := int(chunk) + 1
		for i := 0; i < len(out); i += step {
			w.Write(out[i:min(i+step, len(out))])
		}
		kept := w.endCall()
		for _, l := range rec.lines() {
			msg := strings.TrimPrefix(l, "WARN ")
			if len(msg) > abi.MaxLogLen || strings.Contains(msg, "\n") {
				t.Fatalf("line of %d bytes: %q", len(msg), msg)
			}
		}
		total := 0
		for _, k := range kept {
			total += len(k)
		}
		if len(kept) > stderrTailLines || total > stderrTailBytes {
			t.Fatalf("kept %d lines, %d bytes", len(kept), total)
		}
	})
}
