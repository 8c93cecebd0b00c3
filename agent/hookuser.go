package agent

import (
	"fmt"
	"os"
	"os/user"
	"strconv"

	"github.com/hashicorp/hcl/v2"

	"github.com/slipstreamkv/slipstream/plugins/host"
)

// RunAs is the user and groups a hook's processes (command and check) run
// as, resolved from its user and group settings when the configuration
// loads. The agent switches to them in the child process only, so it needs
// the privilege to (root, or CAP_SETUID and CAP_SETGID).
type RunAs struct {
	UID, GID uint32
	// Groups are the supplementary groups: the user's groups with user
	// set; with group alone, the agent's own are kept (nil).
	Groups []uint32
}

// finalizeRunAs resolves a hook's user and group (names or numeric ids),
// naming the watch, the hook and the setting when one does not exist.
func (h *HookConf) finalizeRunAs(watch string, diags hcl.Diagnostics) hcl.Diagnostics {
	if h.User == "" && h.Group == "" {
		return diags
	}
	where := fmt.Sprintf("hook %q of watch %q", h.Name, watch)
	r := &RunAs{UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	if h.User != "" {
		u, err := lookupUser(h.User)
		if err != nil {
			return append(diags, errAt(h.UserRange, "Unknown hook user", fmt.Sprintf("%s: user = %q: %v.", where, h.User, err)))
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		r.UID, r.GID = uint32(uid), uint32(gid)
		ids, err := u.GroupIds()
		if err != nil {
			return append(diags, errAt(h.UserRange, "Unknown hook user", fmt.Sprintf("%s: user = %q: its groups: %v.", where, h.User, err)))
		}
		r.Groups = []uint32{}
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil {
				r.Groups = append(r.Groups, uint32(g))
			}
		}
	}
	if h.Group != "" {
		g, err := lookupGroup(h.Group)
		if err != nil {
			return append(diags, errAt(h.GroupRange, "Unknown hook group", fmt.Sprintf("%s: group = %q: %v.", where, h.Group, err)))
		}
		gid, _ := strconv.ParseUint(g.Gid, 10, 32)
		r.GID = uint32(gid)
	}
	h.RunAs = r
	return diags
}

// finalizeOwner resolves an output's owner and group (names or numeric
// ids) into FileOwner, naming the watch, the output and the setting when
// one does not exist: the watch could never write its files. A group alone
// keeps the agent's user; an owner alone brings its primary group.
func (o *OutputConf) finalizeOwner(watch string, diags hcl.Diagnostics) hcl.Diagnostics {
	if o.Owner == "" && o.Group == "" {
		return diags
	}
	where := fmt.Sprintf("output %q of watch %q", o.Name, watch)
	owner := &host.Owner{UID: os.Getuid(), GID: os.Getgid()}
	if o.Owner != "" {
		u, err := lookupUser(o.Owner)
		if err != nil {
			return append(diags, errAt(o.OwnerRange, "Unknown output owner", fmt.Sprintf("%s: owner = %q: %v.", where, o.Owner, err)))
		}
		owner.UID, _ = strconv.Atoi(u.Uid)
		owner.GID, _ = strconv.Atoi(u.Gid)
	}
	if o.Group != "" {
		g, err := lookupGroup(o.Group)
		if err != nil {
			return append(diags, errAt(o.GroupRange, "Unknown output group", fmt.Sprintf("%s: group = %q: %v.", where, o.Group, err)))
		}
		owner.GID, _ = strconv.Atoi(g.Gid)
	}
	o.FileOwner = owner
	return diags
}

// lookupUser finds a user by name, else by numeric id.
func lookupUser(name string) (*user.User, error) {
	u, err := user.Lookup(name)
	if _, nerr := strconv.ParseUint(name, 10, 32); err != nil && nerr == nil {
		if u, ierr := user.LookupId(name); ierr == nil {
			return u, nil
		}
	}
	return u, err
}

// lookupGroup finds a group by name, else by numeric id.
func lookupGroup(name string) (*user.Group, error) {
	g, err := user.LookupGroup(name)
	if _, nerr := strconv.ParseUint(name, 10, 32); err != nil && nerr == nil {
		if g, ierr := user.LookupGroupId(name); ierr == nil {
			return g, nil
		}
	}
	return g, err
}
