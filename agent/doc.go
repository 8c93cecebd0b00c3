// Package agent is slipagent's runtime. It loads the HCL configuration and,
// for every declared watch, keeps a local fold of a NATS JetStream KV bucket
// in sync, hands each batch of changes to the watch's WebAssembly plugin, runs
// check commands on the files the plugin staged, commits them, runs the hooks
// the plugin requested, and only then checkpoints the fold's cursor.
//
//	cfg, err := agent.Load("/etc/slipagent/agent.hcl")
//	a, err := agent.New(cfg, agent.Options{Logger: logger})
//	err = a.Run(ctx) // until ctx ends
//
// Serve wraps Run with configuration reloads (SIGHUP) and systemd's
// RELOADING/STOPPING notifications.
//
// # Guarantees
//
// A watch's persisted cursor C means every change up to C has been applied:
// the plugin returned, its files are committed and fsynced, and its hooks ran.
// Hooks are journaled before the files that call for them are committed, so a
// crash between the two runs them on restart. A failing plugin, check, hook or
// bucket makes its own watch retry with backoff and report unhealthy; the
// other watches carry on. The agent never creates buckets.
//
// Local state is a cache of the bucket: a fold, hook journal or state file
// that does not load is moved aside (renamed NAME.quarantined-<UTC time> in
// the watch's directory, never deleted), reported in the log, the metrics
// and /status, and rebuilt from the bucket with a full render. A lost
// journal runs every hook of the watch once more, so hooks must be
// idempotent (they already are re-run after a crash).
//
// # Concurrency
//
// Each watch runs in its own goroutine owned by Run, which returns only after
// all of them have stopped. Agent's Status, Ready and Handler are safe for
// concurrent use.
package agent
