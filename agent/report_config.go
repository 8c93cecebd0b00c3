package agent

import (
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/slipstreamkv/slipstream/fleet"
	"github.com/slipstreamkv/slipstream/kvcore"
)

// ReportConf makes the agent report each watch's applied revision and state
// to a NATS KV bucket, where `slipagent fleet` reads the whole fleet's:
//
//	report {
//	  bucket   = "slipagent-fleet" # default
//	  interval = "30s"             # heartbeat; changes are written at once
//	  max_age  = "5m"              # default 10 × interval: silent hosts age out
//	  host     = "web1"            # default: the host name, dots as "_"
//	  max_bytes = "64MiB"          # bucket size when the agent creates it
//	  replicas  = 3                # its copies in a cluster (default 1)
//	  domain    = "hub"            # JetStream domain of the bucket (default: the nats block's)
//	}
type ReportConf struct {
	Bucket    string `hcl:"bucket,optional"`
	IntervalS string `hcl:"interval,optional"`
	MaxAgeS   string `hcl:"max_age,optional"`
	Host      string `hcl:"host,optional"`
	MaxBytesS string `hcl:"max_bytes,optional"`
	// Replicas is the number of copies of the bucket when the agent
	// creates it (default 1; at most 5, as JetStream allows).
	Replicas int `hcl:"replicas,optional"`
	// Domain is the JetStream domain of the report bucket when it is not
	// the watched buckets' (the nats block's domain): an agent on a leaf
	// node that reads the leaf's mirror reports to the hub's bucket, with
	// the rest of the fleet, over a second connection.
	Domain string `hcl:"domain,optional"`

	DefRange      hcl.Range `hcl:",def_range"`
	BucketRange   hcl.Range `hcl:"bucket,attr_value_range"`
	IntervalRange hcl.Range `hcl:"interval,attr_value_range"`
	MaxAgeRange   hcl.Range `hcl:"max_age,attr_value_range"`
	HostRange     hcl.Range `hcl:"host,attr_value_range"`
	MaxBytesRange hcl.Range `hcl:"max_bytes,attr_value_range"`
	ReplicasRange hcl.Range `hcl:"replicas,attr_value_range"`

	Interval time.Duration // default DefaultReportInterval
	// MaxAge (default reportMaxAgeIntervals × Interval) is longer than
	// the fleet's DefaultSilentAfter intervals, so a dead host shows as
	// silent before its records age out.
	MaxAge time.Duration
	// MaxBytes sizes the bucket the agent creates (default
	// DefaultReportMaxBytes); when full, the oldest records go first.
	MaxBytes int64
}

// Report defaults.
const (
	DefaultReportBucket   = fleet.DefaultBucket
	DefaultReportInterval = 30 * time.Second
	// DefaultReportMaxBytes holds some 150,000 records (hosts × watches).
	DefaultReportMaxBytes = 64 << 20
	// reportMaxAgeIntervals × interval is the default max_age.
	reportMaxAgeIntervals = 10
	// minReportInterval keeps a typo ("30ms") from flooding the bucket.
	minReportInterval = 100 * time.Millisecond
)

func (r *ReportConf) finalize(diags hcl.Diagnostics) hcl.Diagnostics {
	if r.Bucket == "" {
		r.Bucket = DefaultReportBucket
	}
	if !kvcore.ValidBucket(r.Bucket) {
		diags = append(diags, errAt(r.BucketRange, "Invalid report bucket", fmt.Sprintf("%q is not a bucket name: letters, digits, - and _ only.", r.Bucket)))
	}
	r.Interval, diags = parseDuration(r.IntervalS, r.IntervalRange, DefaultReportInterval, diags)
	if r.Interval < minReportInterval {
		diags = append(diags, errAt(r.IntervalRange, "Invalid report interval", fmt.Sprintf("interval is at least %v.", minReportInterval)))
	}
	r.MaxAge, diags = parseDuration(r.MaxAgeS, r.MaxAgeRange, reportMaxAgeIntervals*r.Interval, diags)
	if r.MaxAge <= r.Interval {
		diags = append(diags, errAt(r.MaxAgeRange, "Invalid report max_age", fmt.Sprintf("max_age (%v) must be longer than interval (%v), or live hosts' records expire between heartbeats.", r.MaxAge, r.Interval)))
	}
	r.MaxBytes, diags = parseSize(r.MaxBytesS, r.MaxBytesRange, DefaultReportMaxBytes, diags)
	if r.Replicas == 0 {
		r.Replicas = 1
	}
	if r.Replicas < 1 || r.Replicas > 5 {
		diags = append(diags, errAt(r.ReplicasRange, "Invalid report replicas", fmt.Sprintf("replicas is %d; JetStream keeps 1 to 5 copies of a bucket.", r.Replicas)))
	}
	if r.Host == "" {
		name, err := os.Hostname()
		if err != nil {
			diags = append(diags, errAt(r.DefRange, "No host name", fmt.Sprintf("the host name cannot be read (%v); set host.", err)))
		}
		r.Host = fleet.HostID(name)
	}
	if !fleet.ValidHost(r.Host) {
		diags = append(diags, errAt(r.HostRange, "Invalid report host", fmt.Sprintf("%q is not a host id: letters, digits, - and _ only (it is one token of the report keys <host>.<watch>).", r.Host)))
	}
	return diags
}
