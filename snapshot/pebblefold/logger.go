package pebblefold

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// errorEvery is the least time between two of Pebble's error lines: it
// retries a flush or compaction that failed at once, logging each failure
// (a disk that fills up from elsewhere would flood the log).
const errorEvery = time.Second

// slogLogger adapts slog to Pebble's logger.
type slogLogger struct {
	l *slog.Logger

	mu      sync.Mutex
	next    time.Time // when the next error line may be logged
	dropped int       // error lines not logged since the last one
}

func newSlogLogger(l *slog.Logger) *slogLogger { return &slogLogger{l: l} }

func (s *slogLogger) Infof(format string, args ...any) {
	s.l.Debug(fmt.Sprintf(format, args...), slog.String("component", "pebble"))
}

// Errorf logs one line per errorEvery, with the count of those it dropped.
func (s *slogLogger) Errorf(format string, args ...any) {
	s.mu.Lock()
	now := time.Now()
	if now.Before(s.next) {
		s.dropped++
		s.mu.Unlock()
		return
	}
	dropped := s.dropped
	s.next, s.dropped = now.Add(errorEvery), 0
	s.mu.Unlock()
	attrs := []any{slog.String("component", "pebble")}
	if dropped > 0 {
		attrs = append(attrs, slog.Int("dropped_since_last", dropped))
	}
	s.l.Error(fmt.Sprintf(format, args...), attrs...)
}

func (s *slogLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.l.Error(msg, slog.String("component", "pebble"))
	panic("pebble: " + msg)
}
