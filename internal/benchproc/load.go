package benchproc

import (
	"os"
	"strings"
)

// Loadavg is the first three fields of /proc/loadavg, printed with a
// benchmark's figures as the machine's load.
func Loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
