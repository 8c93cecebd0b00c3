package main

import (
	"regexp"
	"strings"
)

var describeRE = regexp.MustCompile(`^v?(\d+\.\d+\.\d+)(?:-(\d+)-g([0-9a-f]+))?(-dirty)?$`)

// packageVersion turns git describe's output into a version dpkg and rpm
// order correctly: "v1.2.3" is 1.2.3; "v1.2.3-4-gabc" (4 commits past the
// tag) is 1.2.3+git4.abc, later than 1.2.3; a tree without a tag
// ("abc", "abc-dirty") is 0.0.0+gitabc, and "-dirty" becomes ".dirty".
func packageVersion(describe string) string {
	if m := describeRE.FindStringSubmatch(describe); m != nil {
		v := m[1]
		if m[2] != "" {
			v += "+git" + m[2] + "." + m[3]
		}
		if m[4] != "" {
			if m[2] == "" {
				v += "+"
			} else {
				v += "."
			}
			v += "dirty"
		}
		return v
	}
	return "0.0.0+git" + strings.ReplaceAll(strings.TrimPrefix(describe, "v"), "-", ".")
}
