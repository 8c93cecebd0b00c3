package main

import (
	"bytes"
	"testing"
)

func TestUnifiedDiff(t *testing.T) {
	for _, tc := range []struct {
		name, a, b, want string
	}{
		{"equal", "x\n", "x\n", ""},
		{"new", "", "a\nb\n", "--- A\n+++ B\n@@ -0,0 +1,2 @@\n+a\n+b\n"},
		{"change in the middle", "1\n2\n3\n4\n5\n6\n7\n8\n9\n", "1\n2\n3\n4\nfive\n6\n7\n8\n9\n",
			"--- A\n+++ B\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"},
		{"two hunks", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n", "one\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\ntwelve\n",
			"--- A\n+++ B\n@@ -1,4 +1,4 @@\n-1\n+one\n 2\n 3\n 4\n@@ -9,4 +9,4 @@\n 9\n 10\n 11\n-12\n+twelve\n"},
		{"no final newline", "a\nb", "a\nc",
			"--- A\n+++ B\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n"},
		{"insert and delete", "a\nb\nc\n", "b\nc\nd\n", "--- A\n+++ B\n@@ -1,3 +1,3 @@\n-a\n b\n c\n+d\n"},
		{"new binary", "", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "Binary files A and B differ\n"},
		{"binary to text", "\xff\xfe", "text\n", "Binary files A and B differ\n"},
		{"a NUL in UTF-8", "a\n", "a\x00\n", "Binary files A and B differ\n"},
		{"equal binary", "\x00\xff", "\x00\xff", ""},
	} {
		var out bytes.Buffer
		unifiedDiff(&out, "A", "B", []byte(tc.a), []byte(tc.b))
		if out.String() != tc.want {
			t.Errorf("%s: got\n%s\nwant\n%s", tc.name, out.String(), tc.want)
		}
	}
}
