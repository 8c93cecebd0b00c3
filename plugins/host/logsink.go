package host

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// logSink forwards one instance's log lines (log host function, stdout,
// stderr) to slog through a token bucket, counting what it drops.
type logSink struct {
	logger *slog.Logger
	onLog  func(slog.Level, string) // InstanceConfig.OnLog
	rate   float64                  // tokens per second
	burst  float64
	now    func() time.Time

	mu      sync.Mutex
	tokens  float64
	last    time.Time
	dropped int
}

func newLogSink(logger *slog.Logger, l Limits, now func() time.Time) *logSink {
	return &logSink{logger: logger, rate: l.LogPerSecond, burst: float64(l.LogBurst), now: now, tokens: float64(l.LogBurst), last: now()}
}

// emit logs one line if the rate allows, otherwise counts it as dropped.
func (s *logSink) emit(level slog.Level, msg, stream string) {
	if s.onLog != nil && level >= slog.LevelWarn {
		s.onLog(level, msg)
	}
	if !s.logger.Enabled(context.Background(), level) {
		return
	}
	s.mu.Lock()
	now := s.now()
	s.tokens = min(s.burst, s.tokens+now.Sub(s.last).Seconds()*s.rate)
	s.last = now
	if s.tokens < 1 {
		s.dropped++
		s.mu.Unlock()
		return
	}
	s.tokens--
	dropped := s.dropped
	s.dropped = 0
	s.mu.Unlock()
	if dropped > 0 {
		s.reportDropped(dropped)
	}
	s.logger.Log(context.Background(), level, msg, slog.String("stream", stream))
}

// flush reports lines dropped since the last report.
func (s *logSink) flush() {
	s.mu.Lock()
	dropped := s.dropped
	s.dropped = 0
	s.mu.Unlock()
	if dropped > 0 {
		s.reportDropped(dropped)
	}
}

func (s *logSink) reportDropped(n int) {
	s.logger.Warn("plugin log lines dropped by rate limit", slog.Int("dropped", n))
}

// stderrTailLines is how many of the last stderr lines of a call a trap
// error quotes (a Go panic's first lines, for instance).
const (
	stderrTailLines = 6
	stderrTailBytes = 1024
)

// lineWriter is a guest's stdout or stderr: it splits the byte stream into
// lines of at most abi.MaxLogLen bytes for the sink. For stderr it also keeps
// the first lines of the current call, unthrottled, for trap errors: up to
// the first blank line, and restarting at a line that starts a Go crash
// report ("panic: ", "fatal error: "), so an error quotes the headline of the
// report rather than its goroutine dump.
type lineWriter struct {
	sink   *logSink
	level  slog.Level
	stream string
	keep   bool // keep the first lines of each call (stderr)

	buf      []byte
	skipping bool // the current line was already emitted truncated
	kept     []string
	keptLen  int
	keptDone bool // a blank line ended the kept lines
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if !w.skipping {
			room := abi.MaxLogLen - len(w.buf)
			if len(chunk) > room {
				w.buf = append(w.buf, chunk[:room]...)
				w.line()
				w.skipping = true
			} else {
				w.buf = append(w.buf, chunk...)
			}
		}
		if i < 0 {
			break
		}
		if !w.skipping {
			w.line()
		}
		w.skipping = false
		p = p[i+1:]
	}
	return n, nil
}

func (w *lineWriter) line() {
	line := strings.TrimRight(string(w.buf), "\r")
	w.buf = w.buf[:0]
	if w.keep {
		w.keepLine(line)
	}
	w.sink.emit(w.level, line, w.stream)
}

func (w *lineWriter) keepLine(line string) {
	switch {
	case strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: "):
		w.kept, w.keptLen, w.keptDone = nil, 0, false
	case strings.TrimSpace(line) == "":
		w.keptDone = len(w.kept) > 0
		return
	}
	if w.keptDone || len(w.kept) >= stderrTailLines || w.keptLen >= stderrTailBytes {
		return
	}
	l := line[:min(len(line), stderrTailBytes-w.keptLen)]
	w.kept = append(w.kept, l)
	w.keptLen += len(l)
}

// endCall emits a pending partial line and returns (and forgets) the lines
// kept during the call.
func (w *lineWriter) endCall() []string {
	if len(w.buf) > 0 {
		w.line()
	}
	w.skipping = false
	kept := w.kept
	w.kept, w.keptLen, w.keptDone = nil, 0, false
	return kept
}
