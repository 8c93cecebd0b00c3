//go:build !wasip1

package main

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/plugintest"
	"github.com/slipstreamkv/slipstream/internal/plugintest/harness"
	"github.com/slipstreamkv/slipstream/plugins/host"
)

// funcCases are templates exercising every function, with what they render
// over funcView. Each becomes one template of one configuration.
var funcCases = []struct{ name, src, want string }{
	{"key", `{{ key "svc/web/port" }}`, "8080"},
	{"key-outside-prefix", `{{ key "top" }}`, "level"},
	{"keyOrDefault", `{{ keyOrDefault "svc/web/port" "1" }} {{ keyOrDefault "absent" "fallback" }}`, "8080 fallback"},
	{"keyExists", `{{ keyExists "svc/web/port" }} {{ keyExists "absent" }}`, "true false"},
	{"ls", `{{ range ls "svc/web" }}{{ .Key }}={{ .Value }}({{ .Path }});{{ end }}`, "host=10.0.0.1(svc/web/host);port=8080(svc/web/port);"},
	{"tree", `{{ range tree "svc/" }}{{ .Key }};{{ end }}`, "db/host;db/port;web/host;web/port;"},
	{"byKey", `{{ range $svc, $pairs := tree "svc" | byKey }}{{ $svc }}:{{ range $pairs }}{{ .Key }},{{ end }};{{ end }}`, "db:host,port,;web:host,port,;"},
	{"parseJSON", `{{ with parseJSON (key "json") }}{{ .name }} {{ index .tags 1 }} {{ .n }}{{ end }}`, "api b 3"},
	{"json", `{{ (json (key "json")).name }}`, "api"},
	{"toJSON", `{{ parseJSON (key "json") | toJSON }}`, `{"n":3,"name":"api","tags":["a","b","<c>"]}`},
	{"toJSONPretty", `{{ toJSONPretty (parseJSON "{\"a\":[1]}") }}`, "{\n  \"a\": [\n    1\n  ]\n}"},
	{"base64Encode", `{{ base64Encode "hi?>" }}`, "aGk/Pg=="},
	{"base64Decode", `{{ base64Decode "aGk/Pg==" }}`, "hi?>"},
	{"base64URLEncode", `{{ base64URLEncode "hi?>" }}`, "aGk_Pg=="},
	{"base64URLDecode", `{{ base64URLDecode "aGk_Pg==" }}`, "hi?>"},
	{"split-join", `{{ key "list" | split "," | join ";" }}`, "x;y;z"},
	{"join-any", `{{ join "+" (parseJSON "[1,\"a\",true]") }}`, "1+a+true"},
	{"trimSpace", `[{{ trimSpace "  a b \n" }}]`, "[a b]"},
	{"trimPrefix-trimSuffix", `{{ "svc/web.conf" | trimPrefix "svc/" | trimSuffix ".conf" }}`, "web"},
	{"replaceAll", `{{ replaceAll "." "_" "a.b.c" }} {{ replace "a" "b" "aa" }}`, "a_b_c bb"},
	{"case", `{{ toLower "AbC" }} {{ toUpper "AbC" }} {{ lower "X" }} {{ upper "x" }}`, "abc ABC x X"},
	{"hasPrefix-hasSuffix", `{{ hasPrefix "ab" "abc" }} {{ hasSuffix "bc" "abc" }} {{ "abc" | hasPrefix "c" }}`, "true true false"},
	{"contains", `{{ contains "ell" "hello" }} {{ "hello" | contains "x" }} {{ contains "b" (split "," "a,b") }} {{ contains "c" (split "," "a,b") }}`, "true false true false"},
	{"indent", `{{ indent 2 "a\nb" }}`, "  a\n  b"},
	{"regexMatch", `{{ regexMatch "^[0-9]+$" "123" }} {{ regexMatch "^[0-9]+$" "12a" }}`, "true false"},
	{"regexReplaceAll", `{{ regexReplaceAll "([a-z]+)-([0-9]+)" "$2.$1" "web-01" }}`, "01.web"},
	{"parse-numbers", `{{ parseBool "true" }} {{ parseInt " 42 " }} {{ parseFloat "1.5" }}`, "true 42 1.5"},
	{"arithmetic", `{{ add 2 3 }} {{ 10 | subtract 3 }} {{ multiply 4 2.5 }} {{ 10 | divide 4 }} {{ 10.0 | divide 4 }} {{ 10 | modulo 4 }} {{ 7.5 | modulo 2 }} {{ minimum 3 (parseJSON "2") }} {{ maximum 1.5 2 }}`, "5 7 10 2 2 2 1.5 2 2"},
	{"default", `{{ keyOrDefault "absent" "" | default "dflt" }} {{ default "dflt" "set" }} {{ default 5 0 }} {{ default "x" (split "," "a") }}`, "dflt set 5 [a]"},
	{"sort", `{{ sort (split "," "c,a,b") }} {{ sort (parseJSON "[3,1.5,2]") }}`, "[a b c] [1.5 2 3]"},
	{"sortKeys", `{{ range sortKeys (parseJSON "{\"b\":1,\"a\":2}") }}{{ . }};{{ end }}`, "a;b;"},
	{"data", `{{ .Watch }} {{ len .Entries }} {{ index .Values "svc/db/port" }}`, "dns 5 5432"},
}

// funcView is the view funcCases render. The templates' prefix is "svc/".
var funcView = map[string]string{
	"svc/web/host": "10.0.0.1",
	"svc/web/port": "8080",
	"svc/db/host":  "10.0.0.2",
	"svc/db/port":  "5432",
	"svc/":         "a folder key, left out by ls and tree",
	"top":          "level",
	"json":         `{"name":"api","tags":["a","b","<c>"],"n":3}`,
	"list":         "x,y,z",
}

func TestModuleFunctions(t *testing.T) {
	var specs []map[string]string
	for _, c := range funcCases {
		specs = append(specs, map[string]string{"source": c.src, "destination": c.name + ".out"})
	}
	list, err := json.Marshal(specs)
	if err != nil {
		t.Fatal(err)
	}
	h := harness.New(t, plugintest.Module(t, "plugins/examples/template"), harness.Options{
		Watch:   "dns",
		Outputs: []string{"out"},
		Plugin:  host.PluginConfig{Name: "template", Config: map[string]string{"templates": string(list), "prefix": "svc/", "hook": ""}},
	})
	for k, v := range funcView {
		h.View.Put(host.Entry{Key: k, Value: []byte(v), Revision: 1})
	}
	h.Commit(h.Render())
	for _, c := range funcCases {
		if got, _ := h.Read("out", c.name+".out"); got != c.want {
			t.Errorf("%s: %s rendered %q, want %q", c.name, c.src, got, c.want)
		}
	}
	if want := len(funcCases); len(h.Files("out")) != want {
		t.Errorf("%d files, want %d", len(h.Files("out")), want)
	}
}

func TestModuleFunctionErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{`{{ key "absent" }}`, `template: f.tmpl:1:3: executing "f.tmpl" at <key "absent">: error calling key: key "absent": not in the view`},
		{`{{ parseJSON "{" }}`, `error calling parseJSON: parseJSON: unexpected end of JSON input`},
		{`{{ base64Decode "%%" }}`, `error calling base64Decode: illegal base64 data`},
		{`{{ sort (parseJSON "[1,\"a\"]") }}`, `sort: cannot sort a, a string`},
		{`{{ sortKeys "x" }}`, `sortKeys: string is not a map with string keys`},
		{`{{ join "," "x" }}`, `join: string is not a list`},
		{`{{ regexMatch "(" "x" }}`, "error parsing regexp"},
		{`{{ indent -1 "x" }}`, "indent: -1 spaces"},
		{`{{ 1 | divide 0 }}`, "division by zero"},
		{`{{ add 1 "x" }}`, `1 (int) and x (string) are not both numbers`},
	} {
		list, _ := json.Marshal([]map[string]string{{"source": c.src, "destination": "f", "name": "f.tmpl"}})
		_, err := harness.New(t, plugintest.Module(t, "plugins/examples/template"), harness.Options{
			Outputs: []string{"out"},
			Plugin:  host.PluginConfig{Name: "template", Config: map[string]string{"templates": string(list)}},
		}).Render()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.src, err, c.want)
		}
	}
}

// TestFunctionsAreDocumented keeps the README's function table and funcs in
// step.
func TestFunctionsAreDocumented(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for name := range funcs {
		if !regexp.MustCompile("`" + name + "[ `]").Match(readme) {
			missing = append(missing, name)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Fatalf("plugins/examples/README.md does not document %v", missing)
	}
}
