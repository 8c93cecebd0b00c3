package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// diffContext is how many unchanged lines surround each hunk.
const diffContext = 3

// maxDiffCells bounds the LCS table; larger inputs are shown as one hunk
// replacing every line.
const maxDiffCells = 16 << 20

// unifiedDiff writes the unified diff turning a into b, labelled with the
// two names, or nothing when they are equal. It is a plain LCS line diff,
// meant for configuration-sized files. When either side is binary (not
// UTF-8, or holding a NUL) it says only that they differ, as diff and git do.
func unifiedDiff(w io.Writer, nameA, nameB string, a, b []byte) {
	if string(a) == string(b) {
		return
	}
	if isBinary(a) || isBinary(b) {
		fmt.Fprintf(w, "Binary files %s and %s differ\n", nameA, nameB)
		return
	}
	la, lb := splitLines(a), splitLines(b)
	ops := diffLines(la, lb)
	fmt.Fprintf(w, "--- %s\n+++ %s\n", nameA, nameB)
	for start := 0; start < len(ops); {
		// Find the next change and the end of its hunk: changes closer than
		// twice the context share one hunk.
		first := start
		for first < len(ops) && ops[first].kind == ' ' {
			first++
		}
		if first == len(ops) {
			return
		}
		end, gap := first, 0
		for i := first; i < len(ops) && gap <= 2*diffContext; i++ {
			if ops[i].kind == ' ' {
				gap++
			} else {
				gap, end = 0, i+1
			}
		}
		lo, hi := max(first-diffContext, start), min(end+diffContext, len(ops))
		printHunk(w, ops[lo:hi])
		start = hi
	}
}

// modeDiff writes a line saying that the permission bits of name change,
// when the file at oldPath and its new content at newPath both exist and
// differ in them (a content diff cannot show it); nothing otherwise.
func modeDiff(w io.Writer, name, oldPath, newPath string) {
	oi, oerr := os.Stat(oldPath)
	ni, nerr := os.Stat(newPath)
	if oerr != nil || nerr != nil || oi.Mode().Perm() == ni.Mode().Perm() {
		return
	}
	fmt.Fprintf(w, "mode of %s changes: %#o -> %#o\n", name, oi.Mode().Perm(), ni.Mode().Perm())
}

// isBinary reports whether b is not text a terminal can show.
func isBinary(b []byte) bool {
	return !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0
}

// diffOp is one line of an edit script: ' ' kept, '-' removed, '+' added;
// ai and bi are the line numbers (0-based) it has in a and b before it.
type diffOp struct {
	kind   byte
	line   string
	ai, bi int
}

func printHunk(w io.Writer, ops []diffOp) {
	na, nb := 0, 0
	for _, op := range ops {
		if op.kind != '+' {
			na++
		}
		if op.kind != '-' {
			nb++
		}
	}
	fmt.Fprintf(w, "@@ -%s +%s @@\n", hunkRange(ops[0].ai, na), hunkRange(ops[0].bi, nb))
	for _, op := range ops {
		fmt.Fprintf(w, "%c%s\n", op.kind, strings.TrimSuffix(op.line, "\n"))
		if !strings.HasSuffix(op.line, "\n") {
			fmt.Fprintln(w, `\ No newline at end of file`)
		}
	}
}

// hunkRange is the "start,count" of a hunk side, as diff -u prints it.
func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	if n == 1 {
		return fmt.Sprint(start + 1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

// splitLines splits b after each newline; the last line may lack one.
func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	lines := strings.SplitAfter(string(b), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// diffLines returns an edit script turning a into b, from a longest common
// subsequence of lines.
func diffLines(a, b []string) []diffOp {
	// Common prefix and suffix need no table.
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	ma, mb := a[pre:len(a)-suf], b[pre:len(b)-suf]
	var ops []diffOp
	for i := range pre {
		ops = append(ops, diffOp{' ', a[i], i, i})
	}
	ai, bi := pre, pre
	emit := func(kind byte, line string) {
		ops = append(ops, diffOp{kind, line, ai, bi})
		if kind != '+' {
			ai++
		}
		if kind != '-' {
			bi++
		}
	}
	if (len(ma)+1)*(len(mb)+1) > maxDiffCells {
		for _, l := range ma {
			emit('-', l)
		}
		for _, l := range mb {
			emit('+', l)
		}
	} else {
		// lcs[i][j] is the LCS length of ma[i:] and mb[j:].
		w := len(mb) + 1
		lcs := make([]int32, (len(ma)+1)*w)
		for i := len(ma) - 1; i >= 0; i-- {
			for j := len(mb) - 1; j >= 0; j-- {
				if ma[i] == mb[j] {
					lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
				} else {
					lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
				}
			}
		}
		i, j := 0, 0
		for i < len(ma) || j < len(mb) {
			switch {
			case i < len(ma) && j < len(mb) && ma[i] == mb[j]:
				emit(' ', ma[i])
				i, j = i+1, j+1
			case i < len(ma) && (j == len(mb) || lcs[(i+1)*w+j] >= lcs[i*w+j+1]):
				emit('-', ma[i])
				i++
			default:
				emit('+', mb[j])
				j++
			}
		}
	}
	for k := len(a) - suf; k < len(a); k++ {
		emit(' ', a[k])
	}
	return ops
}
