package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
)

// funcs are the template functions besides text/template's builtins. Their
// names and argument orders follow consul-template's (the value a pipeline
// passes comes last); the view functions read the running call's view.
var funcs = template.FuncMap{
	// the view
	"key":          key,
	"keyOrDefault": keyOrDefault,
	"keyExists":    keyExists,
	"ls":           func(prefix string) ([]KeyPair, error) { return active.pairs(prefix, false) },
	"tree":         func(prefix string) ([]KeyPair, error) { return active.pairs(prefix, true) },
	"byKey":        byKey,

	// JSON and base64
	"parseJSON":       parseJSON,
	"json":            parseJSON, // the name of earlier versions
	"toJSON":          func(v any) (string, error) { return toJSON(v, "") },
	"toJSONPretty":    func(v any) (string, error) { return toJSON(v, "  ") },
	"base64Encode":    func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
	"base64Decode":    decoder(base64.StdEncoding),
	"base64URLEncode": func(s string) string { return base64.URLEncoding.EncodeToString([]byte(s)) },
	"base64URLDecode": decoder(base64.URLEncoding),

	// strings
	"split":           func(sep, s string) []string { return strings.Split(s, sep) },
	"join":            func(sep string, list any) (string, error) { return join(sep, list) },
	"trimSpace":       strings.TrimSpace,
	"trimPrefix":      func(prefix, s string) string { return strings.TrimPrefix(s, prefix) },
	"trimSuffix":      func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
	"replaceAll":      func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
	"replace":         func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
	"toLower":         strings.ToLower,
	"toUpper":         strings.ToUpper,
	"lower":           strings.ToLower,
	"upper":           strings.ToUpper,
	"hasPrefix":       func(prefix, s string) bool { return strings.HasPrefix(s, prefix) },
	"hasSuffix":       func(suffix, s string) bool { return strings.HasSuffix(s, suffix) },
	"contains":        contains,
	"indent":          indent,
	"regexMatch":      func(re, s string) (bool, error) { return regexp.MatchString(re, s) },
	"regexReplaceAll": regexReplaceAll,
	"parseBool":       strconv.ParseBool,
	"parseInt":        func(s string) (int64, error) { return strconv.ParseInt(strings.TrimSpace(s), 10, 64) },
	"parseFloat":      func(s string) (float64, error) { return strconv.ParseFloat(strings.TrimSpace(s), 64) },

	// numbers: integers stay integers, a float makes the result a float
	"add":      arith(func(a, b int64) (int64, error) { return a + b, nil }, func(a, b float64) float64 { return a + b }),
	"subtract": arith(func(a, b int64) (int64, error) { return b - a, nil }, func(a, b float64) float64 { return b - a }),
	"multiply": arith(func(a, b int64) (int64, error) { return a * b, nil }, func(a, b float64) float64 { return a * b }),
	"divide":   arith(intDivide, func(a, b float64) float64 { return b / a }),
	"modulo":   arith(intModulo, func(a, b float64) float64 { return math.Mod(b, a) }),
	"minimum":  arith(func(a, b int64) (int64, error) { return min(a, b), nil }, func(a, b float64) float64 { return min(a, b) }),
	"maximum":  arith(func(a, b int64) (int64, error) { return max(a, b), nil }, func(a, b float64) float64 { return max(a, b) }),

	// values and lists
	"default":  defaultValue,
	"sort":     sortList,
	"sortKeys": sortKeys,
}

// errNoKey is the error of key for an absent key.
var errNoKey = errors.New("not in the view (keyOrDefault and keyExists accept absent keys)")

func key(k string) (string, error) {
	e, err := active.get(k)
	switch {
	case err != nil:
		return "", err
	case e == nil:
		return "", fmt.Errorf("key %q: %w", k, errNoKey)
	}
	return e.Value, nil
}

func keyOrDefault(k, def string) (string, error) {
	e, err := active.get(k)
	if err != nil || e == nil {
		return def, err
	}
	return e.Value, nil
}

func keyExists(k string) (bool, error) {
	e, err := active.get(k)
	return e != nil, err
}

// byKey groups pairs from tree by their first path element: the map's keys
// are those elements, each pair's Key becomes the rest of its path.
func byKey(pairs []KeyPair) map[string][]KeyPair {
	m := map[string][]KeyPair{}
	for _, p := range pairs {
		top, rest, ok := strings.Cut(p.Key, active.sep)
		if !ok {
			continue
		}
		p.Key = rest
		m[top] = append(m[top], p)
	}
	return m
}

func parseJSON(s string) (any, error) {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("parseJSON: %w", err)
	}
	return v, nil
}

// toJSON encodes v without HTML escaping (configuration files want "<" as it
// is), indented when indent is not empty.
func toJSON(v any, indent string) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

func decoder(enc *base64.Encoding) func(string) (string, error) {
	return func(s string) (string, error) {
		b, err := enc.DecodeString(s)
		return string(b), err
	}
}

// join joins a list of strings, or of any values printed as text/template
// would.
func join(sep string, list any) (string, error) {
	if ss, ok := list.([]string); ok {
		return strings.Join(ss, sep), nil
	}
	items, err := elements("join", list)
	if err != nil {
		return "", err
	}
	ss := make([]string, len(items))
	for i, it := range items {
		ss[i] = fmt.Sprint(it)
	}
	return strings.Join(ss, sep), nil
}

// contains reports whether haystack, a string, holds needle as a substring,
// or whether haystack, a list, has an element equal to needle.
func contains(needle, haystack any) (bool, error) {
	if s, ok := haystack.(string); ok {
		n, ok := needle.(string)
		if !ok {
			return false, fmt.Errorf("contains: needle %v of a string is a %T", needle, needle)
		}
		return strings.Contains(s, n), nil
	}
	items, err := elements("contains", haystack)
	if err != nil {
		return false, err
	}
	for _, it := range items {
		if reflect.DeepEqual(it, needle) {
			return true, nil
		}
	}
	return false, nil
}

// indent prefixes every line of s with n spaces.
func indent(n int, s string) (string, error) {
	if n < 0 {
		return "", fmt.Errorf("indent: %d spaces", n)
	}
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad), nil
}

func regexReplaceAll(re, repl, s string) (string, error) {
	r, err := regexp.Compile(re)
	if err != nil {
		return "", err
	}
	return r.ReplaceAllString(s, repl), nil
}

// defaultValue returns given unless it is empty (nil, zero, "", an empty
// list or map), and def otherwise, as sprig's default does.
func defaultValue(def any, given ...any) any {
	if len(given) == 0 || given[0] == nil {
		return def
	}
	v := reflect.ValueOf(given[0])
	switch v.Kind() {
	case reflect.Slice, reflect.Map, reflect.Array, reflect.String:
		if v.Len() == 0 {
			return def
		}
	default:
		if v.IsZero() {
			return def
		}
	}
	return given[0]
}

// sortList returns a sorted copy of a list of strings or of numbers.
func sortList(list any) (any, error) {
	items, err := elements("sort", list)
	if err != nil || len(items) == 0 {
		return items, err
	}
	switch items[0].(type) {
	case string:
		ss := make([]string, len(items))
		for i, it := range items {
			s, ok := it.(string)
			if !ok {
				return nil, fmt.Errorf("sort: a list of strings holds %v, a %T", it, it)
			}
			ss[i] = s
		}
		slices.Sort(ss)
		return ss, nil
	default:
		fs := make([]float64, len(items))
		for i, it := range items {
			v := reflect.ValueOf(it)
			switch {
			case v.CanInt():
				fs[i] = float64(v.Int())
			case v.CanUint():
				fs[i] = float64(v.Uint())
			case v.CanFloat():
				fs[i] = v.Float()
			default:
				return nil, fmt.Errorf("sort: cannot sort %v, a %T (only strings or numbers)", it, it)
			}
		}
		slices.Sort(fs)
		return fs, nil
	}
}

// sortKeys returns the keys of a map with string keys, sorted.
func sortKeys(m any) ([]string, error) {
	v := reflect.ValueOf(m)
	if v.Kind() != reflect.Map || v.Type().Key().Kind() != reflect.String {
		return nil, fmt.Errorf("sortKeys: %T is not a map with string keys", m)
	}
	keys := make([]string, 0, v.Len())
	for it := v.MapRange(); it.Next(); {
		keys = append(keys, it.Key().String())
	}
	slices.Sort(keys)
	return keys, nil
}

// arith makes a function of two numbers. As in consul-template, the value a
// pipeline passes is the second operand: {{ 10 | subtract 3 }} is 7, and
// subtract, divide and modulo take (b, a) and compute a-b, a/b, a%b.
func arith(ints func(a, b int64) (int64, error), floats func(a, b float64) float64) func(a, b any) (any, error) {
	return func(a, b any) (any, error) {
		ia, aInt := toInt(a)
		ib, bInt := toInt(b)
		if aInt && bInt {
			return ints(ia, ib)
		}
		fa, okA := toFloat(a)
		fb, okB := toFloat(b)
		if !okA || !okB {
			return nil, fmt.Errorf("%v (%T) and %v (%T) are not both numbers", a, a, b, b)
		}
		return floats(fa, fb), nil
	}
}

func intDivide(a, b int64) (int64, error) {
	if a == 0 {
		return 0, errors.New("division by zero")
	}
	return b / a, nil
}

func intModulo(a, b int64) (int64, error) {
	if a == 0 {
		return 0, errors.New("modulo by zero")
	}
	return b % a, nil
}

// toInt returns v as an int64 if it is an integer (a float with no
// fraction, as JSON numbers are, counts).
func toInt(v any) (int64, bool) {
	r := reflect.ValueOf(v)
	switch {
	case r.CanInt():
		return r.Int(), true
	case r.CanUint():
		return int64(r.Uint()), true
	case r.CanFloat():
		f := r.Float()
		return int64(f), f == math.Trunc(f) && math.Abs(f) < 1<<53
	}
	return 0, false
}

func toFloat(v any) (float64, bool) {
	r := reflect.ValueOf(v)
	switch {
	case r.CanInt():
		return float64(r.Int()), true
	case r.CanUint():
		return float64(r.Uint()), true
	case r.CanFloat():
		return r.Float(), true
	}
	return 0, false
}

// elements returns the elements of a slice or array.
func elements(fn string, list any) ([]any, error) {
	v := reflect.ValueOf(list)
	if v.Kind() != reflect.Slice && v.Kind() != reflect.Array {
		return nil, fmt.Errorf("%s: %T is not a list", fn, list)
	}
	out := make([]any, v.Len())
	for i := range out {
		out[i] = v.Index(i).Interface()
	}
	return out, nil
}
