//go:build unix

package agent

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// checkOnlyTrustedWrite returns a *TrustError when path, or a directory
// on the way to it, can be changed by a user other than the agent's
// (effective) user or root: it is owned by another user, or writable by
// its group or by everyone. A directory on the way may be writable by
// everyone when it is sticky (/tmp): then others cannot rename or remove
// what they do not own. Symbolic links are followed one component at a
// time, as the kernel does, so the directory holding each link is checked
// as well as those of its target: a link whose directory others can write
// is as untrusted as the file. In a sticky directory, a link must be the
// agent's user's or root's, who alone can replace it.
func checkOnlyTrustedWrite(what, path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	w := trustWalk{what: what, path: path, euid: os.Geteuid()}
	dir := "/"
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	rest := pathNames(abs)
	if err := w.check(dir, fi, len(rest) == 0, abs); err != nil {
		return err
	}
	for links := 0; len(rest) > 0; {
		name := rest[0]
		rest = rest[1:]
		if name == ".." {
			dir = filepath.Dir(dir) // checked on the way down
			continue
		}
		p := filepath.Join(dir, name)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if links++; links > maxLinks {
				return &fs.PathError{Op: "resolve", Path: path, Err: syscall.ELOOP}
			}
			d, err := os.Stat(dir)
			if err != nil {
				return err
			}
			if d.Mode()&fs.ModeSticky != 0 {
				if err := w.check(p, fi, false, abs); err != nil {
					return err
				}
			}
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if filepath.IsAbs(target) {
				dir = "/" // checked first
			}
			rest = append(pathNames(target), rest...)
			continue
		}
		if err := w.check(p, fi, len(rest) == 0, abs); err != nil {
			return err
		}
		dir = p
	}
	return nil
}

// maxLinks bounds the symbolic links followed on one path, as the kernel's
// (ELOOP) does.
const maxLinks = 40

// pathNames are the names in a path, without the empty ones and ".".
func pathNames(path string) []string {
	var names []string
	for _, n := range strings.Split(path, "/") {
		if n != "" && n != "." {
			names = append(names, n)
		}
	}
	return names
}

// trustWalk checks the components on the way to one configured path.
type trustWalk struct {
	what, path string
	euid       int
}

// check returns a *TrustError when others can change p, with fi its
// Lstat: the file the path resolves to when final, else a directory on the
// way or (in a sticky directory) a symbolic link, whose mode bits say
// nothing but whose owner can replace it. abs is the path made absolute.
func (w trustWalk) check(p string, fi fs.FileInfo, final bool, abs string) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	te := &TrustError{What: w.what, Path: w.path, At: p, Owner: userName(int(st.Uid)), Mode: fi.Mode()}
	if p == abs {
		te.At = w.path
	} else if final {
		te.Target = true
	}
	link := fi.Mode()&fs.ModeSymlink != 0
	perm := fi.Mode().Perm()
	sticky := !final && fi.Mode()&fs.ModeSticky != 0
	switch {
	case st.Uid != 0 && int(st.Uid) != w.euid:
		te.Problem = fmt.Sprintf("is owned by %s, neither the agent's user (%s) nor root", te.Owner, userName(w.euid))
		te.Fix = fmt.Sprintf("chown %s %s", chownName(w.euid), p)
		if link {
			te.Fix = fmt.Sprintf("chown -h %s %s", chownName(w.euid), p)
		}
		return te
	case link:
	case perm&0o002 != 0 && !sticky:
		te.Problem = "is writable by every user"
		te.Fix = "chmod go-w " + p
		return te
	case perm&0o020 != 0 && !sticky:
		te.Problem = fmt.Sprintf("is writable by its group (%s)", groupName(int(st.Gid)))
		te.Fix = "chmod g-w " + p
		return te
	}
	return nil
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
