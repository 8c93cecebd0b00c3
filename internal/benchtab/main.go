// Command benchtab turns `go test -bench` output into a table that puts each
// benchmark of ours beside its baseline.
//
// Pairs are found by name: a benchmark whose last path element is "ours" is
// paired with the one that has the same name ending in "baseline". For every
// unit both report, the table prints both values and a ratio in which 1.00
// means "as good as the baseline" and smaller is worse: baseline/ours for
// lower-is-better units (ns/op, latencies, bytes) and ours/baseline for rates
// (units ending in "/s"). Benchmarks without a partner are listed as they are.
//
// Usage: go test -run '^$' -bench . ./... | go run ./internal/benchtab
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"text/tabwriter"
)

type result struct {
	name    string
	metrics map[string]float64
	units   []string // in the order reported
}

func main() {
	results, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtab:", err)
		os.Exit(1)
	}
	render(os.Stdout, results)
}

// parse reads benchmark lines: "BenchmarkX-2  N  V1 unit1  V2 unit2 ...",
// naming each after the last element of the package ("pkg: …" line) it ran in.
func parse(r io.Reader) ([]result, error) {
	var out []result
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "pkg: "); ok {
			pkg = path.Base(strings.TrimSpace(p)) + " "
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		res := result{name: pkg + trimProcs(strings.TrimPrefix(f[0], "Benchmark")), metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			if _, dup := res.metrics[f[i+1]]; !dup {
				res.units = append(res.units, f[i+1])
			}
			res.metrics[f[i+1]] = v
		}
		out = append(out, res)
	}
	return out, sc.Err()
}

// trimProcs drops the "-N" GOMAXPROCS suffix go test appends.
func trimProcs(name string) string {
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			return name[:i]
		}
	}
	return name
}

func render(w io.Writer, results []result) {
	byName := make(map[string]result, len(results))
	for _, r := range results {
		byName[r.name] = r
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, "benchmark\tunit\tours\tbaseline\tratio\t")
	for _, r := range results {
		group, ok := strings.CutSuffix(r.name, "/ours")
		if !ok {
			if _, isBase := strings.CutSuffix(r.name, "/baseline"); isBase {
				if _, paired := byName[strings.TrimSuffix(r.name, "/baseline")+"/ours"]; paired {
					continue
				}
			}
			for _, u := range r.units {
				fmt.Fprintf(tw, "%s\t%s\t%s\t\t\t\n", r.name, u, format(r.metrics[u]))
			}
			continue
		}
		base, paired := byName[group+"/baseline"]
		for _, u := range r.units {
			b, both := base.metrics[u]
			if !paired || !both {
				fmt.Fprintf(tw, "%s\t%s\t%s\t\t\t\n", group, u, format(r.metrics[u]))
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", group, u, format(r.metrics[u]), format(b), ratio(u, r.metrics[u], b))
		}
	}
	tw.Flush()
}

// ratio is 1.00 when ours equals the baseline and below 1 when ours is worse.
func ratio(unit string, ours, base float64) string {
	higherBetter := strings.HasSuffix(unit, "/s")
	var r float64
	switch {
	case higherBetter && base != 0:
		r = ours / base
	case !higherBetter && ours != 0:
		r = base / ours
	default:
		return "-"
	}
	return strconv.FormatFloat(r, 'f', 2, 64)
}

func format(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	default:
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
}
