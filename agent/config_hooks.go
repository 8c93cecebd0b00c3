package agent

import (
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// hookTiming fills in a hook's splay and min_interval: positive durations,
// or "0" (or nothing) for none.
func hookTiming(h *HookConf, diags hcl.Diagnostics) hcl.Diagnostics {
	h.Splay, diags = parseOptionalDuration("splay", h.SplayS, h.SplayRange, diags)
	h.MinInterval, diags = parseOptionalDuration("min_interval", h.MinIntervalS, h.MinIntervalRange, diags)
	return diags
}

// parseOptionalDuration reads a duration whose absence, or any zero
// duration, means "none".
func parseOptionalDuration(attr, s string, rng hcl.Range, diags hcl.Diagnostics) (time.Duration, hcl.Diagnostics) {
	if s == "" || s == "0" {
		return 0, diags
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, append(diags, errAt(rng, "Invalid "+attr, fmt.Sprintf("%q is not a duration such as \"10s\" or \"1m\" (\"0\" for none).", s)))
	}
	return d, diags
}
