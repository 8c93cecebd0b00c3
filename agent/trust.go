package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
)

// TrustError is a file or directory the agent trusts — its configuration,
// data dir, compile cache or credentials — that someone other than the
// agent's user or root can change. The agent refuses to start with one:
// whoever can change it can change what the agent runs or writes.
type TrustError struct {
	What    string      // "data dir", "compile cache", "config file", "NATS creds file", …
	Path    string      // the path as configured
	At      string      // the path at fault: Path, a directory or symbolic link on the way to it, or its target
	Target  bool        // At is the file Path resolves to through symbolic links
	Owner   string      // its owner, "uid 1000 (alice)"
	Mode    fs.FileMode // its mode
	Problem string      // "is writable by every user", …
	Fix     string      // the command that fixes it
}

func (e *TrustError) Error() string {
	msg := fmt.Sprintf("agent: %s %s", e.What, e.Path)
	switch {
	case e.At == e.Path && e.Mode&fs.ModeSymlink != 0:
		msg += " (a symbolic link)"
	case e.At == e.Path:
	case e.Target:
		msg += ": its target " + e.At
	case e.Mode&fs.ModeSymlink != 0:
		msg += ": the symbolic link " + e.At + " on the way to it"
	default:
		msg += ": the directory " + e.At + " above it"
	}
	return fmt.Sprintf("%s %s (owner %s, mode %s %04o), so others can change what the agent trusts; fix: %s", msg, e.Problem, e.Owner, e.Mode, e.Mode.Perm(), e.Fix)
}

// CheckTrust refuses (a *TrustError) a configuration file (or a file it
// reads through file() and its kin), data dir, compile cache, credentials,
// certificate or CA file that others can change, and warns (to
// the agent's logger) about credentials others can read and about an
// unpinned plugin module others can change. Paths that do not exist are
// left to whoever opens them. Run, Once and Plan call it before they start;
// `slipagent validate` too, and Reload checks the new configuration so.
func (a *Agent) CheckTrust() error { return a.checkTrust(a.cfg) }

// CheckTrustedPath refuses (a *TrustError naming it as what) a path that
// someone other than the agent's user or root can change, as CheckTrust
// does for the paths of a configuration: for commands that use one of
// those paths on their own (a compile cache they fill, a socket they send
// the token to). A path that does not exist is left to whoever creates it.
func CheckTrustedPath(what, path string) error {
	if err := checkOnlyTrustedWrite(what, path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Loopback reports whether the TCP listen address host:port stays on this
// host ("localhost" or a loopback IP).
func Loopback(address string) bool {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// checkTrust is CheckTrust for cfg, the agent's or one it reloads (with the
// same data dir and compile cache).
func (a *Agent) checkTrust(cfg *Config) error {
	// A data_dir that is a file, or cannot be listed, would fail the walk
	// below naming neither the setting nor the cause ("lstat
	// DATA_DIR/cache: not a directory").
	if err := checkDataDir(cfg); err != nil {
		return err
	}
	type item struct{ what, path string }
	var refuse []item
	for _, f := range cfg.Files {
		what := "config file"
		if fi, err := os.Stat(f); err == nil && fi.IsDir() {
			what = "config directory"
		}
		refuse = append(refuse, item{what, f})
	}
	for _, f := range cfg.Inputs {
		refuse = append(refuse, item{"config input file", f})
	}
	refuse = append(refuse, item{"data dir", cfg.DataDir}, item{"compile cache", a.cacheDir})
	// Certificates are no secret, but whoever can change a CA file or a
	// certificate chooses whom the agent trusts, or who it claims to be.
	if t := cfg.NATS.TLS; t != nil {
		refuse = append(refuse, item{"NATS TLS CA file", t.CAFile}, item{"NATS TLS cert file", t.CertFile})
	}
	if h := cfg.HTTP; h != nil && h.TLS != nil {
		refuse = append(refuse, item{"http TLS cert file", h.TLS.CertFile}, item{"http TLS client CA file", h.TLS.ClientCAFile})
	}
	secrets := []item{{"NATS creds file", cfg.NATS.CredsFile}}
	if t := cfg.NATS.TLS; t != nil {
		secrets = append(secrets, item{"NATS TLS key file", t.KeyFile})
	}
	if h := cfg.HTTP; h != nil {
		secrets = append(secrets, item{"http token file", h.TokenFile})
		if h.TLS != nil {
			secrets = append(secrets, item{"http TLS key file", h.TLS.KeyFile})
		}
	}
	refuse = append(refuse, secrets...)
	if h := cfg.HTTP; h != nil && h.Network == "unix" {
		// Whoever can write it can put their own socket there, which
		// `slipagent status` would send the token to.
		refuse = append(refuse, item{"http socket directory", filepath.Dir(h.Address)})
	}
	for _, it := range refuse {
		if it.path == "" {
			continue
		}
		if err := CheckTrustedPath(it.what, it.path); err != nil {
			return err
		}
	}
	for _, it := range secrets {
		if it.path == "" {
			continue
		}
		if problem, fix := readableByOthers(it.path); problem != "" {
			a.log.Warn(it.what+" "+problem, "path", it.path, "fix", fix)
		}
	}
	if h := cfg.HTTP; h != nil && h.Network == "tcp" && h.TokenFile == "" && (h.TLS == nil || h.TLS.ClientCAFile == "") && !Loopback(h.Address) {
		a.log.Warn("the http endpoints answer anyone who can reach them: /status names the watches, their revisions and errors",
			"listen", h.Listen, "fix", `add token_file (or tls with client_ca_file) to http, or listen on 127.0.0.1 or a unix: socket`)
	}
	if h := cfg.HTTP; h != nil && h.Network == "tcp" && h.TokenFile != "" && h.TLS == nil && !Loopback(h.Address) {
		a.log.Warn("the http token crosses the network in clear text: anyone on the path can read it and use it",
			"listen", h.Listen, "fix", `add a tls block to http, or listen on 127.0.0.1 or a unix: socket`)
	}
	for _, w := range cfg.Watches {
		for _, h := range w.Hooks {
			for _, f := range hookFiles(h) {
				var te *TrustError
				if err := checkOnlyTrustedWrite(f.what, f.path); errors.As(err, &te) {
					a.log.Warn("hook program can be changed by others: they could run their code as the hook's user",
						"watch", w.Name, "hook", h.Name, "problem", te.Error())
				}
			}
		}
	}
	for _, p := range cfg.Plugins {
		if p.SHA256 != "" {
			continue
		}
		var te *TrustError
		if err := checkOnlyTrustedWrite("plugin module", p.Module); errors.As(err, &te) {
			a.log.Warn("plugin module without a sha256 pin can be changed by others: they could run their code in the plugin's sandbox",
				"plugin", p.Name, "module", p.Module, "problem", te.Error(), "fix", te.Fix+`, or pin it (sha256 = "…", see slipagent plugin inspect)`)
		}
	}
	return nil
}

// hookFile is a file a hook runs: its program, or a script it hands to one.
type hookFile struct{ what, path string }

// hookFiles are the files h's command and check run, each once: a program
// given by absolute path (one found in PATH lies in the system's
// directories), and the arguments that are absolute paths of existing
// regular files, the scripts handed to an interpreter
// (["/bin/sh", "/etc/slipagent/reload.sh"]).
func hookFiles(h *HookConf) []hookFile {
	var files []hookFile
	seen := make(map[string]bool)
	for _, argv := range [][]string{h.Command, h.Check} {
		for i, arg := range argv {
			if !filepath.IsAbs(arg) || seen[arg] {
				continue
			}
			what := "hook program"
			if i > 0 {
				if fi, err := os.Stat(arg); err != nil || !fi.Mode().IsRegular() {
					continue // an output directory, a device, a path to come
				}
				what = "hook script"
			}
			seen[arg] = true
			files = append(files, hookFile{what, arg})
		}
	}
	return files
}
