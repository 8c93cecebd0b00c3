package pebblefold

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// errorEvery is the least time between two of Pebble's error lines that
// say the same: it retries a flush or compaction that failed at once,
// logging each failure (a disk that fills up from elsewhere would flood
// the log). Another error is logged at once.
const errorEvery = time.Second

// slogLogger adapts slog to Pebble's logger.
type slogLogger struct {
	l *slog.Logger

	mu      sync.Mutex
	last    string    // the last error line logged
	next    time.Time // when it may be logged again
	dropped int       // its repeats not logged since
}

func newSlogLogger(l *slog.Logger) *slogLogger { return &slogLogger{l: l} }

func (s *slogLogger) Infof(format string, args ...any) {
	s.l.Debug(fmt.Sprintf(format, args...), slog.String("component", "pebble"))
}

// Errorf logs a line repeated within errorEvery once, the next time it is
// logged with the count of the repeats it dropped.
func (s *slogLogger) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.mu.Lock()
	now := time.Now()
	if msg == s.last && now.Before(s.next) {
		s.dropped++
		s.mu.Unlock()
		return
	}
	dropped := 0
	if msg == s.last {
		dropped = s.dropped
	}
	s.last, s.next, s.dropped = msg, now.Add(errorEvery), 0
	s.mu.Unlock()
	attrs := []any{slog.String("component", "pebble")}
	if dropped > 0 {
		attrs = append(attrs, slog.Int("dropped_since_last", dropped))
	}
	s.l.Error(msg, attrs...)
}

func (s *slogLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.l.Error(msg, slog.String("component", "pebble"))
	panic("pebble: " + msg)
}
