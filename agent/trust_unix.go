//go:build unix

package agent

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// checkOnlyTrustedWrite returns a *TrustError when path, or a directory
// above it, can be changed by a user other than the agent's (effective) user
// or root: it is owned by another user, or writable by its group or by
// everyone. A directory above may be writable by everyone when it is sticky
// (/tmp): then others cannot rename or remove what they do not own. Symbolic
// links are followed, and the target's directories checked.
func checkOnlyTrustedWrite(what, path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return err
	}
	euid := os.Geteuid()
	for p := real; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		te := &TrustError{What: what, Path: path, At: p, Owner: userName(int(st.Uid)), Mode: fi.Mode()}
		if p == real {
			te.At = path
		}
		perm := fi.Mode().Perm()
		sticky := p != real && fi.Mode()&fs.ModeSticky != 0
		switch {
		case st.Uid != 0 && int(st.Uid) != euid:
			te.Problem = fmt.Sprintf("is owned by %s, neither the agent's user (%s) nor root", te.Owner, userName(euid))
			te.Fix = fmt.Sprintf("chown %s %s", chownName(euid), p)
			return te
		case perm&0o002 != 0 && !sticky:
			te.Problem = "is writable by every user"
			te.Fix = "chmod go-w " + p
			return te
		case perm&0o020 != 0 && !sticky:
			te.Problem = fmt.Sprintf("is writable by its group (%s)", groupName(int(st.Gid)))
			te.Fix = "chmod g-w " + p
			return te
		}
		if parent := filepath.Dir(p); parent == p {
			return nil
		}
	}
}

// readableByOthers says how a secret file can be read by users other than
// the agent's and root (everyone, or a group that is neither root's nor
// the agent's), and the fix; "" when it cannot.
func readableByOthers(path string) (problem, fix string) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", ""
	}
	perm := fi.Mode().Perm()
	switch {
	case perm&0o004 != 0:
		return fmt.Sprintf("is readable by every user (mode %04o)", perm), "chmod o-r " + path
	case perm&0o040 != 0 && st.Gid != 0 && int(st.Gid) != os.Getegid():
		return fmt.Sprintf("is readable by the group %s (mode %04o)", groupName(int(st.Gid)), perm), "chmod g-r " + path
	}
	return "", ""
}

// userName is "uid N (name)", or "uid N" for an id with no name.
func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return fmt.Sprintf("uid %d (%s)", uid, u.Username)
	}
	return fmt.Sprintf("uid %d", uid)
}

// chownName is what chown takes for uid: its name, or the number.
func chownName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}

// groupName is "gid N (name)", or "gid N" for an id with no name.
func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return fmt.Sprintf("gid %d (%s)", gid, g.Name)
	}
	return fmt.Sprintf("gid %d", gid)
}
