package main

import (
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/slipstreamkv/slipstream/plugins/sdk"
)

type plugin struct{}

var _ sdk.Configurer = plugin{}

// configKeys are the settings readConfig reads.
var configKeys = []string{"output", "prefix", "mode", "hook", "prune", "strict"}

// Configure refuses, when the host loads the plugin, a configuration it
// cannot use: a key it does not read (a misspelt prefix would otherwise
// leave every key's prefix in its path) or a value that does not parse.
func (plugin) Configure(h *sdk.Host) error {
	if err := sdk.CheckConfigKeys(h, configKeys...); err != nil {
		return fmt.Errorf("files: %w", err)
	}
	_, err := readConfig(h)
	return err
}

type config struct {
	output string
	prefix string
	mode   fs.FileMode
	hook   string
	prune  bool
	strict bool
}

func readConfig(h *sdk.Host) (config, error) {
	c := config{output: "files", prune: true}
	if v, ok := h.Config("output"); ok {
		c.output = v
	}
	c.prefix, _ = h.Config("prefix")
	c.hook, _ = h.Config("hook")
	if v, ok := h.Config("mode"); ok {
		m, err := strconv.ParseUint(v, 8, 32)
		if err != nil || m&^0o777 != 0 {
			return c, fmt.Errorf("files: config mode %q is not an octal permission", v)
		}
		c.mode = fs.FileMode(m)
	}
	if v, ok := h.Config("prune"); ok {
		p, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("files: config prune %q: %w", v, err)
		}
		c.prune = p
	}
	if v, ok := h.Config("strict"); ok {
		st, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("files: config strict %q: %w", v, err)
		}
		c.strict = st
	}
	return c, nil
}

// pathOf maps a key to its file path; ok is false for keys outside the
// prefix and for keys that are not valid paths, for which bad says why.
func (c config) pathOf(key string) (rel string, ok bool, bad error) {
	rel, ok = strings.CutPrefix(key, c.prefix)
	if !ok {
		return "", false, nil
	}
	if err := sdk.CheckPath(rel); err != nil {
		return "", false, err
	}
	return rel, true, nil
}

// refuse handles a key that is not a valid path: with strict an error that
// fails the call (the watch retries it, so deleting or renaming the key in
// the bucket unsticks it), else a log line.
func (c config) refuse(h *sdk.Host, key string, bad error) error {
	if c.strict {
		return fmt.Errorf("files: key %q is not a file path (delete or rename it, or set strict = \"false\" to skip such keys): %w", key, bad)
	}
	h.Logf(sdk.LevelError, "files: skipping key %q: %v", key, bad)
	return nil
}

// Apply writes or removes the file of every changed key.
func (plugin) Apply(h *sdk.Host, b *sdk.Batch) error {
	c, err := readConfig(h)
	if err != nil {
		return err
	}
	changed := false
	for _, u := range b.Updates {
		p, ok, bad := c.pathOf(u.Key)
		// No file was ever written for a removal's key: deleting the key
		// is how a strict watch is unstuck.
		if bad != nil && !u.IsRemoval() {
			if err := c.refuse(h, u.Key, bad); err != nil {
				return err
			}
		}
		if !ok {
			continue
		}
		var did bool
		if u.IsRemoval() {
			did, err = h.RemoveFile(c.output, p)
		} else {
			did, err = h.WriteFile(c.output, p, u.Value, c.mode)
		}
		if err != nil {
			return err
		}
		changed = changed || did
	}
	return c.requestHook(h, changed)
}

// Render writes the file of every key and, with prune, removes the files
// that no key maps to.
func (plugin) Render(h *sdk.Host, _ *sdk.Batch) error {
	c, err := readConfig(h)
	if err != nil {
		return err
	}
	changed := false
	for e, err := range h.Scan(c.prefix) {
		if err != nil {
			return err
		}
		p, ok, bad := c.pathOf(e.Key)
		if bad != nil {
			if err := c.refuse(h, e.Key, bad); err != nil {
				return err
			}
		}
		if !ok {
			continue
		}
		did, err := h.WriteFile(c.output, p, e.Value, c.mode)
		if err != nil {
			return err
		}
		changed = changed || did
	}
	if c.prune {
		pruned, err := c.pruneDir(h, "")
		if err != nil {
			return err
		}
		changed = changed || pruned
	}
	return c.requestHook(h, changed)
}

// pruneDir removes the files below dir that no key maps to. It asks the view
// about each file on disk rather than remembering the keys it wrote, so its
// memory does not grow with the bucket: a render of millions of keys fits
// the guest's default memory. It leaves (and logs) the names no key can map
// to: names that are not valid UTF-8, hold control characters or lie too
// deep. The host would refuse to remove them, and a refusal fails the call,
// so one stray file would make every render fail.
func (c config) pruneDir(h *sdk.Host, dir string) (bool, error) {
	output := c.output
	changed := false
	for e, err := range h.ReadDir(output, dir) {
		if err != nil {
			return false, err
		}
		p := path.Join(dir, e.Name)
		if err := sdk.CheckPath(p); err != nil {
			h.Logf(sdk.LevelWarn, "files: not pruning: %v", err)
			continue
		}
		if e.IsDir() {
			did, err := c.pruneDir(h, p)
			if err != nil {
				return false, err
			}
			changed = changed || did
			continue
		}
		if _, ok, err := h.Get(c.prefix + p); err != nil {
			return false, err
		} else if ok {
			continue
		}
		did, err := h.RemoveFile(output, p)
		if err != nil {
			return false, err
		}
		changed = changed || did
	}
	return changed, nil
}

func (c config) requestHook(h *sdk.Host, changed bool) error {
	if !changed || c.hook == "" {
		return nil
	}
	return h.RequestHook(c.hook)
}
