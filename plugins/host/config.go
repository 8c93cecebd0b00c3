package host

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// Defaults applied by [New], [Engine.Load] and [Plugin.NewInstance].
//
// The output limits fit a full render of a real bucket, one file per key:
// DefaultMaxFiles is twice a million-key bucket, and the host keeps only a
// small record per staged file (about 240 bytes: its path, the random name
// of its staging file, its size and SHA-256; TestStagedFileMemory), so the
// default costs
// at most a few hundred MiB of host memory. DefaultMaxBytes caps the disk a
// call may fill with staged files (they sit beside their targets until the
// commit renames them), not memory.
const (
	DefaultMemoryLimit   = 64 << 20
	DefaultTimeout       = 5 * time.Second
	DefaultRenderTimeout = 10 * time.Minute
	DefaultMaxFileSize   = 16 << 20
	DefaultMaxFiles      = 2_000_000
	DefaultMaxBytes      = 4 << 30
	DefaultLogPerSecond  = 100
	DefaultLogBurst      = 200
	DefaultMode          = fs.FileMode(0o644)
)

// Config configures an [Engine]. The zero value is valid.
type Config struct {
	// CacheDir holds wazero's compilation cache, so a plugin compiles once
	// per host rather than once per start. Empty means in memory only.
	//
	// The cache holds native code that the agent loads and runs as its own.
	// wazero finds an entry by a hash of the module but does not verify it
	// (its CRC guards against corruption, not tampering; the SHA256 pin
	// covers the module, not the cache). So the engine keeps a ledger in
	// the directory (slipagent-cache.json, mode 0600) of the entries it
	// wrote: the module's sha256 and the entry's. Before each compile it
	// removes an entry the ledger does not record (logged at WARN) or whose
	// content differs from its record (logged at ERROR), and the module is
	// compiled again. The ledger is only as safe as the directory: it and
	// its parents must be writable only by the agent's user, which the
	// agent checks at start. The directory also records the digests of
	// module files by stat fingerprint (slipagent-modules.json, see
	// [Engine.ModuleDigest]).
	CacheDir string
	// Logger receives plugin logs and host events. Nil discards them.
	Logger *slog.Logger
}

// PluginConfig configures one plugin. The zero value is valid except for
// Name, which should be set for logs and errors.
type PluginConfig struct {
	// Name identifies the plugin in logs and errors.
	Name string
	// SHA256, when set, pins the module: hex of its sha256 (any case).
	SHA256 string
	// MemoryLimit caps each instance's linear memory, in bytes (rounded up to
	// 64 KiB pages, at most 4 GiB). Default [DefaultMemoryLimit].
	MemoryLimit uint64
	// RecycleAbove recycles an instance after a call that left its memory
	// larger than this many bytes. Default: three quarters of MemoryLimit.
	RecycleAbove uint64
	// Timeout bounds each call (including instantiation) but renders.
	// Default [DefaultTimeout]. It counts the guest's time, sleeps included,
	// but not the host's creating and writing the files the guest stages
	// (bounded by [Limits] instead), nor fsyncing them, which
	// [Result.Commit] does. The limit is strict: a call that returns after
	// it fails with [ErrTimeout].
	Timeout time.Duration
	// RenderTimeout bounds each render call, which writes every output and
	// so may stage millions of files. Default [DefaultRenderTimeout].
	RenderTimeout time.Duration
	// Config is the plugin's configuration, read with config_get and
	// config_keys. A key may not hold a NUL byte.
	Config map[string]string
	// Limits caps what one call may stage and log.
	Limits Limits
	// Logger, when set, replaces the engine's logger for this plugin.
	Logger *slog.Logger
}

// Limits caps what one call may do. Zero fields take the defaults. An error
// for a limit hit names the limit by its setting in the agent's plugin
// block (limits { max_file_size, max_files, max_bytes }).
type Limits struct {
	// MaxFileSize is the largest file one stage_write may stage
	// (max_file_size).
	MaxFileSize int64
	// MaxFiles is how many writes and removals one call may stage
	// (max_files).
	MaxFiles int
	// MaxBytes is the total size of the files one call may stage
	// (max_bytes).
	MaxBytes int64
	// LogPerSecond and LogBurst rate-limit the plugin's log lines (log host
	// function, stdout and stderr together); dropped lines are counted and
	// reported.
	LogPerSecond float64
	LogBurst     int
}

func (l Limits) withDefaults() Limits {
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = DefaultMaxFileSize
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.LogPerSecond <= 0 {
		l.LogPerSecond = DefaultLogPerSecond
	}
	if l.LogBurst <= 0 {
		l.LogBurst = DefaultLogBurst
	}
	return l
}

const pageSize = 64 << 10

func (c PluginConfig) withDefaults() PluginConfig {
	if c.MemoryLimit == 0 {
		c.MemoryLimit = DefaultMemoryLimit
	}
	c.MemoryLimit = min(c.MemoryLimit, 1<<32)
	if c.RecycleAbove == 0 {
		c.RecycleAbove = c.MemoryLimit / 4 * 3
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.RenderTimeout <= 0 {
		c.RenderTimeout = DefaultRenderTimeout
	}
	c.Limits = c.Limits.withDefaults()
	return c
}

func (c PluginConfig) memoryPages() uint32 {
	return uint32((c.MemoryLimit + pageSize - 1) / pageSize)
}

// InstanceConfig configures the instance one watch uses.
type InstanceConfig struct {
	// Watch names the watch in the call input, logs and errors.
	Watch string
	// Outputs are the directories the plugin may write below, by name.
	Outputs map[string]Output
	// Hooks are the hook names the plugin may request.
	Hooks []string
	// ReportKept makes [Result.Kept] report the writes that found their
	// file as written (a digest and a stat each, for a caller that records
	// its outputs); without it Kept is empty and they cost nothing.
	ReportKept bool
	// OnLog, when set, is called with every line the plugin logs at warn
	// level or above (its log host function at level 4 and up, and its
	// stderr), before the rate limit drops any: a plugin that skips a key
	// it cannot render logs why, and the caller can count it. Lines of the
	// initializer of a guest this instance makes (after a trap or a
	// recycle) come with the call that made it; those of the guest Load
	// checked do not come at all.
	OnLog func(level slog.Level, msg string)
}

// Output is a directory a plugin may write below.
type Output struct {
	// Dir is the directory; it must exist. Relative paths are made absolute.
	Dir string
	// Mode is the mode of files the plugin writes with mode 0. Default
	// [DefaultMode]. Only permission bits are allowed.
	Mode fs.FileMode
	// Owner, when set, is applied to every file (and directory) staged in
	// this output, before it is renamed into place.
	Owner *Owner
}

// Owner is a numeric file owner.
type Owner struct {
	UID, GID int
}

func (c InstanceConfig) normalize() (InstanceConfig, error) {
	outs := make(map[string]Output, len(c.Outputs))
	for name, o := range c.Outputs {
		if o.Dir == "" {
			return c, fmt.Errorf("host: output %q has no directory", name)
		}
		dir, err := filepath.Abs(o.Dir)
		if err != nil {
			return c, fmt.Errorf("host: output %q: %w", name, err)
		}
		o.Dir = dir
		if o.Mode == 0 {
			o.Mode = DefaultMode
		}
		if o.Mode&^fs.ModePerm != 0 {
			return c, fmt.Errorf("host: output %q: mode %v has bits beyond the permission bits", name, o.Mode)
		}
		outs[name] = o
	}
	c.Outputs = outs
	c.Hooks = append([]string(nil), c.Hooks...)
	return c, nil
}

// checkOutputDirs checks that every output's directory exists.
func (c InstanceConfig) checkOutputDirs() error {
	for name, o := range c.Outputs {
		fi, err := os.Stat(o.Dir)
		if err != nil {
			return fmt.Errorf("host: output %q: %w", name, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("host: output %q: %s is not a directory", name, o.Dir)
		}
	}
	return nil
}

// timeout is the time limit of a call of kind (0: instantiation).
func (c PluginConfig) timeout(kind abi.Kind) time.Duration {
	if kind == abi.KindRender {
		return c.RenderTimeout
	}
	return c.Timeout
}
