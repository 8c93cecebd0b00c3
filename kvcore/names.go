package kvcore

// The portable name syntax is that of NATS JetStream KV, the strictest backend
// of this module; every backend accepts exactly these names and refuses the
// rest with [ErrInvalidKey] or [ErrInvalidBucket].

// ValidKey reports whether key is a portable key: non-empty, made of ASCII
// letters, digits and the characters - / _ = . only, with dots separating
// non-empty tokens (no leading, trailing or doubled dot).
func ValidKey(key string) bool {
	return key != "" && key[len(key)-1] != '.' && ValidPrefix(key)
}

// ValidPrefix reports whether p is a portable key prefix: "" (every key) or the
// start of some valid key. Unlike a key it may end with a dot, and it need not
// end at a token boundary: "node" covers "node.a" and "nodes".
func ValidPrefix(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '.':
			if i == 0 || p[i-1] == '.' {
				return false
			}
		case !keyChar(c):
			return false
		}
	}
	return true
}

// ValidBucket reports whether name is a portable bucket name: non-empty, made
// of ASCII letters, digits, - and _ only.
func ValidBucket(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !alnum(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

func keyChar(c byte) bool {
	return alnum(c) || c == '-' || c == '/' || c == '_' || c == '='
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
