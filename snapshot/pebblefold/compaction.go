package pebblefold

import (
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// compactionGate is a fold's compaction scheduler: it lets as many
// compactions run at once as Pebble allows without permission, as Pebble's
// default scheduler does, but none before Open has returned. Pebble's Open
// waits for every running compaction before it scans for obsolete files,
// and the default scheduler may start one as soon as Open registers it (at
// the end of the flush of the replayed log, or on its 100 ms tick): right
// after a hydration, an agent restart then waited for the first compaction
// of the hydration's runs, most of a second at 1M keys and far longer at
// more.
type compactionGate struct {
	mu      sync.Mutex
	db      pebble.DBForCompaction // nil until Register and after Unregister
	open    bool                   // Open has returned
	running int

	poke chan struct{} // wakes the granter
	stop chan struct{}
	done chan struct{} // closed when the granter has returned
}

var (
	_ pebble.CompactionScheduler   = (*compactionGate)(nil)
	_ pebble.CompactionGrantHandle = (*compactionGate)(nil)
)

func newCompactionGate() *compactionGate {
	return &compactionGate{poke: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// Register is called by Pebble's Open.
func (g *compactionGate) Register(_ int, db pebble.DBForCompaction) {
	g.mu.Lock()
	g.db = db
	g.mu.Unlock()
	go g.granter()
}

// Unregister is called by Pebble's Close.
func (g *compactionGate) Unregister() {
	close(g.stop)
	<-g.done
	g.mu.Lock()
	g.db = nil
	g.mu.Unlock()
}

// abandon stops the granter of a gate whose Open failed: Pebble does not
// unregister it then. (The gate was never opened, so it never called the
// half-opened database.)
func (g *compactionGate) abandon() {
	g.mu.Lock()
	registered := g.db != nil
	g.mu.Unlock()
	if registered {
		g.Unregister()
	}
}

// opened lets compactions run, once Open has returned.
func (g *compactionGate) opened() {
	g.mu.Lock()
	g.open = true
	g.mu.Unlock()
	g.wake()
}

// TrySchedule is called by Pebble when it has a compaction to run.
func (g *compactionGate) TrySchedule() (bool, pebble.CompactionGrantHandle) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.mayRunLocked() {
		return false, nil
	}
	g.running++
	return true, g
}

// UpdateGetAllowedWithoutPermission is called by Pebble (possibly under its
// own lock, so the granter does the work) when it may allow more.
func (g *compactionGate) UpdateGetAllowedWithoutPermission() { g.wake() }

func (g *compactionGate) mayRunLocked() bool {
	return g.open && g.db != nil && g.running < g.db.GetAllowedWithoutPermission()
}

func (g *compactionGate) wake() {
	select {
	case g.poke <- struct{}{}:
	default:
	}
}

// granter starts the compactions Pebble has waiting, when woken and every
// 100 ms (what Pebble allows can grow without a call), until Unregister.
func (g *compactionGate) granter() {
	defer close(g.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
		case <-g.poke:
		}
		g.grant()
	}
}

func (g *compactionGate) grant() {
	for {
		g.mu.Lock()
		db, ok := g.db, g.mayRunLocked()
		if ok {
			g.running++ // before Schedule: its Done may come first
		}
		g.mu.Unlock()
		if !ok {
			return
		}
		if waiting, _ := db.GetWaitingCompaction(); !waiting || !db.Schedule(g) {
			g.mu.Lock()
			g.running-- // without waking the granter: nothing changed
			g.mu.Unlock()
			return
		}
	}
}

// Started, MeasureCPU and CumulativeStats are the grant handle's reports,
// which the gate does not use.
func (g *compactionGate) Started()                                          {}
func (g *compactionGate) MeasureCPU(pebble.CompactionGoroutineKind)         {}
func (g *compactionGate) CumulativeStats(pebble.CompactionGrantHandleStats) {}

// Done is called by Pebble when a compaction it was granted ends.
func (g *compactionGate) Done() {
	g.mu.Lock()
	g.running--
	g.mu.Unlock()
	g.wake()
}
