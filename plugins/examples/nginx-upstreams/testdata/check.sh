#!/bin/sh
# A stand-in for `nginx -t` in tests: it accepts exactly the grammar the
# plugin emits and fails on anything else. Usage: check.sh FILE
set -eu
f="$1"
opens=$(grep -c '^upstream [A-Za-z0-9_-]* {$' "$f" || true)
closes=$(grep -c '^}$' "$f" || true)
if [ "$opens" != "$closes" ]; then
	echo "check: $opens upstream blocks but $closes closing braces" >&2
	exit 1
fi
if grep -n -v -E '^(# .*|upstream [A-Za-z0-9_-]+ \{|    server [][A-Za-z0-9.:-]+( weight=[0-9]+| max_fails=[0-9]+| fail_timeout=[0-9]+(ms|s|m|h)?| backup| down)*;|\}|)$' "$f" >&2; then
	echo "check: unexpected line" >&2
	exit 1
fi
