package abi

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestABIDocument keeps plugins/ABI.md in step with this package: every host
// function and export is documented, every status code is in the table, the
// limits are those of this package, and the worked example encodes as shown.
func TestABIDocument(t *testing.T) {
	doc, err := os.ReadFile("../ABI.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	for _, s := range HostFunctions() {
		head := regexp.MustCompile("(?m)^### `" + s.Name + `\(([^)]*)\) -> (\S+)` + "`$")
		m := head.FindStringSubmatch(text)
		if m == nil {
			t.Errorf("ABI.md has no heading for %s", s)
			continue
		}
		if n := len(strings.Split(m[1], ",")); n != len(s.Params) {
			t.Errorf("ABI.md documents %s with %d parameters, want %d", s.Name, n, len(s.Params))
		}
		want := "status"
		if s.Results[0] == I64 {
			want = "i64"
		}
		if m[2] != want {
			t.Errorf("ABI.md documents %s as returning %s, want %s", s.Name, m[2], want)
		}
	}
	for _, e := range GuestExports() {
		if !strings.Contains(text, "| `"+e.Name+"` |") {
			t.Errorf("ABI.md does not list the export %s", e.Name)
		}
	}
	for st := ErrIO; st <= Unchanged; st++ {
		if !regexp.MustCompile(fmt.Sprintf("(?m)^\\| %d \\| `[A-Z_]+` \\|", st)).MatchString(text) {
			t.Errorf("ABI.md's status table lacks %d (%v)", st, st)
		}
	}

	for _, want := range []string{
		fmt.Sprintf("relative; at most %d bytes\nand %d components;", MaxPathLen, MaxPathDepth),
		fmt.Sprintf("| path | %d bytes, %d components of at most %d bytes |", MaxPathLen, MaxPathDepth, MaxNameLen),
		fmt.Sprintf("| version bytes | %d |", MaxVersionLen),
		fmt.Sprintf("| log line / error message | %d bytes (truncated) |", MaxLogLen),
		fmt.Sprintf("(the last one wins;\ntruncated to %d bytes)", MaxErrorLen),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("ABI.md does not state the limit %q", want)
		}
	}

	example := regexp.MustCompile("(?s)## 10\\. A worked example.*?```\n(.*?)```").FindStringSubmatch(text)
	if example == nil {
		t.Fatal("ABI.md has no worked example")
	}
	var hexed strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(example[1]), "\n") {
		code, _, _ := strings.Cut(line, "  ")
		hexed.WriteString(strings.ReplaceAll(code, " ", ""))
	}
	got, err := hex.DecodeString(hexed.String())
	if err != nil {
		t.Fatal(err)
	}
	want := AppendHeader(nil, Header{Kind: KindApply, Watch: "w", Cursor: Cursor{Revision: 5}, Count: 1})
	want = AppendRecord(want, Record{Op: OpPut, Revision: 5, Key: "a", Value: []byte("hi")})
	if !bytes.Equal(got, want) {
		t.Fatalf("worked example\n got %x\nwant %x", got, want)
	}
	if !strings.Contains(text, fmt.Sprintf("is this %d-byte input", len(want))) {
		t.Errorf("the worked example's size is not %d bytes", len(want))
	}
}
