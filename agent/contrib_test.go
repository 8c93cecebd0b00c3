package agent

import (
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"
)

// exportedMetrics gathers the agent's registry, with every metric of
// metrics.go observed once and one watch in the status collector, and
// returns the series names a query can use (a histogram's _bucket, _sum
// and _count).
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	a := &Agent{watches: []*watchRunner{{status: newWatchStatus(&WatchConf{Name: "w", Bucket: "b"}, make(chan struct{}, 1), time.Now)}}}
	m := newMetrics(a)
	m.batchApplied("w", 1)
	m.pluginCall("w", false, time.Millisecond, nil)
	m.command("w", "h", "hook", errors.New("failed"))
	m.quarantined("w", "fold")
	m.driftRepaired("w", 1)
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+s] = true
			}
		}
	}
	for _, want := range []string{"slipagent_batches_applied_total", "slipagent_watch_ready", "slipagent_plugin_call_seconds_bucket", "go_goroutines"} {
		if !names[want] {
			t.Fatalf("the registry lacks %s: %v", want, names)
		}
	}
	return names
}

var (
	promStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promMatchers = regexp.MustCompile(`\{[^{}]*\}`)
	promRanges   = regexp.MustCompile(`\[[^\[\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promTokens   = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*(?:\s*\()?|[0-9][0-9A-Za-z_.]*`)
	promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"inf": true, "nan": true, "Inf": true, "NaN": true, "atan2": true}
)

// promMetrics returns the metric names a PromQL expression selects: what is
// left once strings, label matchers, ranges, grouping clauses, numbers,
// keywords and function names are taken out.
func promMetrics(expr string) []string {
	expr = promStrings.ReplaceAllString(expr, `""`)
	expr = promMatchers.ReplaceAllString(expr, " ")
	expr = promRanges.ReplaceAllString(expr, " ")
	expr = promGrouping.ReplaceAllString(expr, " ")
	var names []string
	for _, tok := range promTokens.FindAllString(expr, -1) {
		if tok[0] >= '0' && tok[0] <= '9' || strings.HasSuffix(tok, "(") || promKeywords[tok] {
			continue
		}
		names = append(names, tok)
	}
	return names
}

func TestPromMetrics(t *testing.T) {
	for expr, want := range map[string][]string{
		`slipagent_watch_ready == 0`: {"slipagent_watch_ready"},
		`sum by (instance, watch) (increase(slipagent_commands_total{result="error", hook=~"a|b"}[15m])) > 0`: {"slipagent_commands_total"},
		`histogram_quantile(0.99, sum by (le) (rate(x_bucket{kind="apply"}[$__rate_interval]))) > 2e3`:        {"x_bucket"},
		`time() - (a > 0) or on (instance) b offset 5m unless ignoring(x) c`:                                  {"a", "b", "c"},
		`count(up{job="slipagent"} == 0) or vector(0)`:                                                        {"up"},
	} {
		if got := promMetrics(expr); !slices.Equal(got, want) {
			t.Errorf("promMetrics(%q) = %q, want %q", expr, got, want)
		}
	}
}

// checkExprs fails the test for an expression that selects no metric or
// one the agent does not export.
func checkExprs(t *testing.T, file string, exprs map[string]string, exported map[string]bool) {
	t.Helper()
	if len(exprs) == 0 {
		t.Fatalf("%s: no expressions found", file)
	}
	for where, expr := range exprs {
		names := promMetrics(expr)
		if len(names) == 0 {
			t.Errorf("%s: %s selects no metric: %s", file, where, expr)
		}
		for _, n := range names {
			if !exported[n] {
				t.Errorf("%s: %s uses %s, which the agent does not export: %s", file, where, n, expr)
			}
		}
	}
}

// TestGrafanaDashboard: contrib/grafana/slipagent.json is a dashboard whose
// every query (panels and template variables) selects only metrics the
// agent exports.
func TestGrafanaDashboard(t *testing.T) {
	const file = "../contrib/grafana/slipagent.json"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			GridPos struct{ W, H int }
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if dash.UID == "" || dash.Title == "" || len(dash.Panels) == 0 {
		t.Fatalf("%s: uid %q, title %q, %d panels", file, dash.UID, dash.Title, len(dash.Panels))
	}
	exprs := map[string]string{}
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("%s: panel id %d twice", file, p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W == 0 || p.GridPos.H == 0 || p.Title == "" {
			t.Errorf("%s: panel %d (%q) has no size or title", file, p.ID, p.Title)
		}
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("%s: panel %q has no query", file, p.Title)
		}
		for i, tg := range p.Targets {
			exprs[p.Title+" #"+string(rune('A'+i))] = tg.Expr
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("%s: variable %s: %v", file, v.Name, err)
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("%s: variable %s: query %q is not label_values(SELECTOR, LABEL)", file, v.Name, q.Query)
			continue
		}
		exprs["variable "+v.Name] = m[1]
	}
	checkExprs(t, file, exprs, exportedMetrics(t))
}

// TestPrometheusRules: contrib/prometheus/slipagent-rules.yml is a rule
// file whose every alert has a severity and a summary and selects only
// metrics the agent exports.
func TestPrometheusRules(t *testing.T) {
	const file = "../contrib/prometheus/slipagent-rules.yml"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Record      string            `yaml:"record"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(rules.Groups) == 0 {
		t.Fatalf("%s: no groups", file)
	}
	exprs := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			name := r.Alert + r.Record
			if name == "" || (r.Alert != "" && r.Record != "") {
				t.Errorf("%s: group %s: a rule needs exactly one of alert and record", file, g.Name)
			}
			if _, dup := exprs[name]; dup {
				t.Errorf("%s: %s twice", file, name)
			}
			exprs[name] = r.Expr
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: %s: for %q: %v", file, name, r.For, err)
				}
			}
			if r.Alert != "" && (r.Labels["severity"] == "" || r.Annotations["summary"] == "") {
				t.Errorf("%s: %s lacks a severity label or a summary", file, name)
			}
		}
	}
	checkExprs(t, file, exprs, exportedMetrics(t))
}
