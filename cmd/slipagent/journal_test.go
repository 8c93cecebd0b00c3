package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Under the journal, each record starts with the syslog priority of its
// level, in either log format.
func TestPriorityWriterPrefixesEachRecordWithItsLevel(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		level := new(slog.LevelVar)
		level.Set(slog.LevelDebug)
		opts := &slog.HandlerOptions{Level: level}
		h := slog.Handler(slog.NewTextHandler(priorityWriter{&buf}, opts))
		if format == "json" {
			h = slog.NewJSONHandler(priorityWriter{&buf}, opts)
		}
		log := slog.New(h)
		log.Error("e", "msg2", "level=DEBUG") // a later level= is an attribute's
		log.Warn("w")
		log.Info("i")
		log.Debug("d")
		log.Log(t.Context(), slog.LevelError+4, "e+4")
		var got []string
		for _, line := range bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n")) {
			got = append(got, string(line[:3]))
		}
		if want := []string{"<3>", "<4>", "<6>", "<7>", "<3>"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: prefixes %v, want %v\n%s", format, got, want, buf.String())
		}
	}
}

// Only the stream JOURNAL_STREAM names is the journal's: a child whose
// standard error was redirected inherits the variable, not the stream.
func TestIsJournalStream(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if !isJournalStream(f, fmt.Sprintf("%d:%d", st.Dev, st.Ino)) {
		t.Error("the stream JOURNAL_STREAM names is not taken for the journal")
	}
	for _, stream := range []string{"", "1:2", fmt.Sprintf("%d:%d", st.Dev, st.Ino+1)} {
		if isJournalStream(f, stream) {
			t.Errorf("JOURNAL_STREAM=%q: taken for the journal", stream)
		}
	}
}
