package benchproc

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// WriteTable writes cells as a Markdown table, its first row the header,
// each column padded to its widest cell.
func WriteTable(w io.Writer, cells [][]string) {
	width := make([]int, len(cells[0]))
	for _, c := range cells {
		for i, s := range c {
			width[i] = max(width[i], utf8.RuneCountInString(s))
		}
	}
	for n, c := range cells {
		var b strings.Builder
		for i, s := range c {
			fmt.Fprintf(&b, "| %s%s ", s, strings.Repeat(" ", width[i]-utf8.RuneCountInString(s)))
		}
		fmt.Fprintln(w, b.String()+"|")
		if n == 0 {
			b.Reset()
			for i := range c {
				fmt.Fprintf(&b, "|%s", strings.Repeat("-", width[i]+2))
			}
			fmt.Fprintln(w, b.String()+"|")
		}
	}
}
