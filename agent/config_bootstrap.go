package agent

import (
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// DefaultExportInterval is how often a watch with a bootstrap block offers
// to export its fold.
const DefaultExportInterval = 10 * time.Minute

// BootstrapConf is a watch's bootstrap block: the watch starts from the
// newest artifact in NATS when its data directory is empty, and takes
// part in the fleet's export rounds, where one agent per bucket and round
// (the holder of a lease) exports its fold as an artifact.
type BootstrapConf struct {
	// ObjectStore names the NATS object store bucket that holds the
	// artifacts' payloads; the KV bucket of the same name holds their
	// pointers and the export leases. Exporting agents create both.
	ObjectStore string `hcl:"object_store"`
	// ExportIntervalS is how often the agent offers to export, "0" to
	// never export (only bootstrap from others' artifacts).
	ExportIntervalS string `hcl:"export_interval,optional"`
	// LeaseTTLS is how long an export round's lease holds off the
	// fleet's other agents (default: the export interval).
	LeaseTTLS string `hcl:"lease_ttl,optional"`

	DefRange            hcl.Range `hcl:",def_range"`
	ObjectStoreRange    hcl.Range `hcl:"object_store,attr_value_range"`
	ExportIntervalRange hcl.Range `hcl:"export_interval,attr_value_range"`
	LeaseTTLRange       hcl.Range `hcl:"lease_ttl,attr_value_range"`

	ExportInterval time.Duration // 0: never export
	LeaseTTL       time.Duration
}

// watchBootstrap checks and fills in a watch's bootstrap block.
func watchBootstrap(w *WatchConf, diags hcl.Diagnostics) hcl.Diagnostics {
	b := w.Bootstrap
	if b == nil {
		return diags
	}
	if !kvcore.ValidBucket(b.ObjectStore) {
		diags = append(diags, errAt(b.ObjectStoreRange, "Invalid object_store", fmt.Sprintf("%q is not a bucket name: letters, digits, '-' and '_'.", b.ObjectStore)))
	}
	if b.ExportIntervalS == "0" {
		b.ExportInterval = 0
	} else {
		b.ExportInterval, diags = parseDuration(b.ExportIntervalS, b.ExportIntervalRange, DefaultExportInterval, diags)
	}
	b.LeaseTTL, diags = parseDuration(b.LeaseTTLS, b.LeaseTTLRange, max(b.ExportInterval, time.Second), diags)
	return diags
}
