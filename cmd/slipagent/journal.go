package main

import (
	"bytes"
	"io"
	"os"
	"strings"
)

// toJournal returns w, or, when w is the standard error systemd connected to
// the journal, a writer that starts each line with its syslog priority
// ("<3>" for an ERROR line), as sd-daemon(3) describes: the journal then
// stores each line at its level, so that `journalctl -p err -u slipagent`
// finds the agent's errors (plain lines are all stored at info).
func toJournal(w io.Writer) io.Writer {
	f, ok := w.(*os.File)
	if !ok || !isJournalStream(f, os.Getenv("JOURNAL_STREAM")) {
		return w
	}
	return priorityWriter{f}
}

// priorityWriter prefixes every write, one log record of the text or JSON
// handler, with the syslog priority of the record's level.
type priorityWriter struct{ w io.Writer }

func (p priorityWriter) Write(b []byte) (int, error) {
	line := make([]byte, 0, len(b)+3)
	line = append(line, '<', syslogPriority(b), '>')
	line = append(line, b...)
	if _, err := p.w.Write(line); err != nil {
		return 0, err
	}
	return len(b), nil
}

// syslogPriority is the priority digit of a record formatted by slog's text
// (level=WARN) or JSON ("level":"WARN") handler: the level attribute is the
// first one after the time, so the earliest occurrence of either form is
// the record's (a later one is in an attribute).
func syslogPriority(record []byte) byte {
	level, at := "", len(record)
	for _, key := range []string{"level=", `"level":"`} {
		if i := bytes.Index(record, []byte(key)); i >= 0 && i < at {
			level, at = string(record[i+len(key):]), i
		}
	}
	switch {
	case strings.HasPrefix(level, "ERROR"):
		return '3'
	case strings.HasPrefix(level, "WARN"):
		return '4'
	case strings.HasPrefix(level, "DEBUG"):
		return '7'
	}
	return '6'
}
