// Package smaps reads this process's memory mappings as Linux's
// /proc/self/smaps describes them, for tests of what the agent advises the
// kernel (elsewhere VMFlags fails: there is no such file).
package smaps

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// VMFlags returns the VmFlags of the mapping of this process that holds
// addr (e.g. "hg" for MADV_HUGEPAGE, "nh" for MADV_NOHUGEPAGE).
func VMFlags(addr uintptr) ([]string, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 {
			in = lo <= addr && addr < hi
			continue
		}
		if rest, ok := strings.CutPrefix(line, "VmFlags:"); ok && in {
			return strings.Fields(rest), nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("smaps: no mapping holds %#x", addr)
}
