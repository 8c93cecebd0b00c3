package agent

import (
	"sync"
	"syscall"
)

// commandGroups are the process groups of the hook and check commands
// running now (see runCommand), for KillCommands.
var commandGroups = struct {
	sync.Mutex
	pgids map[int]bool
}{pgids: map[int]bool{}}

// trackGroup notes the process group pgid of a command that started, until
// untrack is called once it was waited for.
func trackGroup(pgid int) (untrack func()) {
	commandGroups.Lock()
	commandGroups.pgids[pgid] = true
	commandGroups.Unlock()
	return func() {
		commandGroups.Lock()
		delete(commandGroups.pgids, pgid)
		commandGroups.Unlock()
	}
}

// KillCommands kills the process group of every hook and check command
// running now. A process that exits without waiting for them (slipagent on
// a second SIGINT or SIGTERM) calls it so that none outlives the agent;
// their watches keep them journaled, and they run again at the next start.
func KillCommands() {
	commandGroups.Lock()
	defer commandGroups.Unlock()
	for pgid := range commandGroups.pgids {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}
