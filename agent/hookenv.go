package agent

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// HookEnvConf is the environment of a hook's processes (its command and its
// check), named after consul-template's exec env block. By default it is
// pristine: a hook sees PATH, LANG, the LC_* variables, the SLIPAGENT_*
// variables the agent sets for it, what allowlist lets through from the
// agent's environment and what custom sets. The agent's own secrets (the
// NATS credentials of env("…"), NOTIFY_SOCKET, …) reach a hook only when
// listed.
type HookEnvConf struct {
	// Pristine false passes the agent's whole environment (the behaviour
	// before pristine became the default), less denylist.
	Pristine *bool `hcl:"pristine,optional"`
	// Allowlist names variables of the agent's environment a pristine
	// hook receives; a name may be a glob ("VAULT_*").
	Allowlist []string `hcl:"allowlist,optional"`
	// Denylist names variables (or globs) a hook never receives, whatever
	// passed them.
	Denylist []string `hcl:"denylist,optional"`
	// Custom sets variables explicitly.
	Custom map[string]string `hcl:"custom,optional"`

	AllowlistRange hcl.Range `hcl:"allowlist,attr_value_range"`
	DenylistRange  hcl.Range `hcl:"denylist,attr_value_range"`
	CustomRange    hcl.Range `hcl:"custom,attr_value_range"`
}

// pristineEnv is what a pristine hook always receives from the agent's
// environment.
var pristineEnv = []string{"PATH", "LANG", "LC_*"}

// agentEnvPrefix starts the names of the variables the agent sets for a
// hook (SLIPAGENT_WATCH, …); custom cannot set them.
const agentEnvPrefix = "SLIPAGENT_"

// finalizeEnv checks a hook's env block, naming the watch and the hook.
func (h *HookConf) finalizeEnv(watch string, diags hcl.Diagnostics) hcl.Diagnostics {
	if h.Env == nil {
		h.Env = &HookEnvConf{}
	}
	e := h.Env
	where := fmt.Sprintf("hook %q of watch %q", h.Name, watch)
	for _, l := range []struct {
		setting  string
		patterns []string
		rng      hcl.Range
	}{{"allowlist", e.Allowlist, e.AllowlistRange}, {"denylist", e.Denylist, e.DenylistRange}} {
		for _, p := range l.patterns {
			if _, err := path.Match(p, ""); err != nil || p == "" || strings.Contains(p, "=") {
				diags = append(diags, errAt(l.rng, "Invalid env "+l.setting, fmt.Sprintf("%s: env %s entry %q is not a variable name or a glob such as \"VAULT_*\".", where, l.setting, p)))
			}
		}
	}
	for k := range e.Custom {
		switch {
		case k == "" || strings.ContainsAny(k, "=\x00"):
			diags = append(diags, errAt(e.CustomRange, "Invalid env custom", fmt.Sprintf("%s: env custom name %q is not a variable name.", where, k)))
		case strings.HasPrefix(k, agentEnvPrefix):
			diags = append(diags, errAt(e.CustomRange, "Invalid env custom", fmt.Sprintf("%s: env custom cannot set %s: the agent sets the %s* variables.", where, k, agentEnvPrefix)))
		}
	}
	return diags
}

// environ is the whole environment of one of the hook's processes: what
// its env block passes of agentEnv (the agent's environment, as
// os.Environ), then its custom variables, then the agent's variables for
// this run (extra, "NAME=value"), which win. A nil e is the default.
func (e *HookEnvConf) environ(agentEnv, extra []string) []string {
	if e == nil {
		e = &HookEnvConf{}
	}
	pristine := e.Pristine == nil || *e.Pristine
	var out []string
	for _, kv := range agentEnv {
		name, _, _ := strings.Cut(kv, "=")
		if pristine && !matchAny(pristineEnv, name) && !matchAny(e.Allowlist, name) {
			continue
		}
		if matchAny(e.Denylist, name) {
			continue
		}
		out = append(out, kv)
	}
	keys := make([]string, 0, len(e.Custom))
	for k := range e.Custom {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = append(out, k+"="+e.Custom[k])
	}
	return dedupEnv(append(out, extra...))
}

// matchAny reports whether name matches one of the globs.
func matchAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// dedupEnv keeps the last value of each name, in the order of first
// appearance.
func dedupEnv(env []string) []string {
	at := make(map[string]int, len(env))
	out := env[:0:0]
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if i, ok := at[name]; ok {
			out[i] = kv
			continue
		}
		at[name] = len(out)
		out = append(out, kv)
	}
	return out
}
