// Package fleet reads and aggregates the records slipagent agents write to a
// report bucket (HCL: report { bucket = "slipagent-fleet" }), so that an
// operator can tell whether a change has reached every host and which hosts
// are stuck.
//
// Each agent writes one [Record] per watch under the key "<host>.<watch>"
// (see [Key]) when the watch's applied revision or state changes, and again
// every heartbeat interval. The bucket has a max age, so the records of a
// host that stopped reporting age out of it. [Read] lists the records,
// [Aggregate] answers "how many hosts applied revision R, which lag, fail,
// are held or went silent" for each watch, and [Handler] serves a live
// rollout page over them.
package fleet
