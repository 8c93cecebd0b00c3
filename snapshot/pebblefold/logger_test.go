package pebblefold

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// recordHandler keeps the records logged through it.
type recordHandler struct{ records []slog.Record }

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.records = append(h.records, r)
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

// Pebble retries a failed flush at once and logs every failure: a burst
// of the same error line is logged once per errorEvery, the next one
// counting those dropped; another error is logged at once.
func TestPebbleErrorsAreRateLimited(t *testing.T) {
	h := &recordHandler{}
	l := newSlogLogger(slog.New(h))
	for range 100 {
		l.Errorf("background error: %s", "no space left on device")
	}
	if len(h.records) != 1 || h.records[0].Level != slog.LevelError {
		t.Fatalf("%d records for a burst of 100 errors, want 1 at ERROR", len(h.records))
	}
	l.mu.Lock()
	l.next = time.Now() // errorEvery has passed
	l.mu.Unlock()
	l.Errorf("background error: %s", "no space left on device")
	if len(h.records) != 2 {
		t.Fatalf("%d records once errorEvery passed, want 2", len(h.records))
	}
	// Another error in a flood is not dropped.
	l.Errorf("background error: %s", "no space left on device")
	l.Errorf("pebble: corruption in %s", "000042.sst")
	if len(h.records) != 3 || !strings.Contains(h.records[2].Message, "corruption") {
		t.Fatalf("%d records after another error, want it logged", len(h.records))
	}
	var dropped int64
	h.records[1].Attrs(func(a slog.Attr) bool {
		if a.Key == "dropped_since_last" {
			dropped = a.Value.Int64()
		}
		return true
	})
	if dropped != 99 {
		t.Fatalf("the second line says %d dropped, want 99", dropped)
	}
}
