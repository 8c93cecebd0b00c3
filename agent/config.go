package agent

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/plugins/host"
)

// Config is the agent's configuration as written in HCL (see agent.hcl.example).
// Load or Parse it, then read the typed values from the fields without an hcl
// tag, which finalize fills in.
type Config struct {
	DataDir string `hcl:"data_dir,optional"`
	// CacheDir holds compiled plugins: cache_dir, else systemd's
	// $CACHE_DIRECTORY, else <data_dir>/cache. Outside data_dir, a fresh
	// data_dir does not recompile the plugins.
	CacheDir string        `hcl:"cache_dir,optional"`
	LogLevel string        `hcl:"log_level,optional"`
	NATS     *NATSConfig   `hcl:"nats,block"`
	HTTP     *HTTPConfig   `hcl:"http,block"`
	Plugins  []*PluginConf `hcl:"plugin,block"`
	Watches  []*WatchConf  `hcl:"watch,block"`
	// Report, when present, makes the agent report its watches to a
	// fleet report bucket (see report_config.go).
	Report *ReportConf `hcl:"report,block"`

	DataDirRange  hcl.Range  `hcl:"data_dir,attr_value_range"`
	CacheDirRange hcl.Range  `hcl:"cache_dir,attr_value_range"`
	LogLevelRange hcl.Range  `hcl:"log_level,attr_value_range"`
	Level         slog.Level // parsed log_level, default info

	// Files are the paths Load read the configuration from: the file, or
	// the directory and its *.hcl files. The agent refuses to run them when
	// others can change them (trust.go). Parse leaves it empty.
	Files []string
	// Inputs are the files the configuration read through file(),
	// filebase64() and templatefile(): part of it, so refused like Files.
	Inputs []string
}

// NATSConfig says how to reach NATS. Credentials are tried in this order:
// creds (base64 of a .creds file), creds_file, user:password in a server URL.
type NATSConfig struct {
	Servers   []string   `hcl:"servers,optional"`
	Creds     string     `hcl:"creds,optional"`
	CredsFile string     `hcl:"creds_file,optional"`
	TimeoutS  string     `hcl:"timeout,optional"`
	TLS       *TLSConfig `hcl:"tls,block"`

	ServersRange   hcl.Range `hcl:"servers,attr_value_range"`
	TimeoutRange   hcl.Range `hcl:"timeout,attr_value_range"`
	CredsRange     hcl.Range `hcl:"creds,attr_value_range"`
	CredsFileRange hcl.Range `hcl:"creds_file,attr_value_range"`
	Timeout        time.Duration

	// Running a fleet (see config_fleet.go): the JetStream domain of the
	// buckets, a random delay before the first connection, and the random
	// part of reconnects and consumer re-creations.
	Domain               string    `hcl:"domain,optional"`
	StartSplayS          string    `hcl:"start_splay,optional"`
	ReconnectJitterS     string    `hcl:"reconnect_jitter,optional"`
	StartSplayRange      hcl.Range `hcl:"start_splay,attr_value_range"`
	ReconnectJitterRange hcl.Range `hcl:"reconnect_jitter,attr_value_range"`
	StartSplay           time.Duration
	ReconnectJitter      time.Duration
	// How often the connection pings its server: two unanswered pings
	// and it moves to another server.
	PingIntervalS     string    `hcl:"ping_interval,optional"`
	PingIntervalRange hcl.Range `hcl:"ping_interval,attr_value_range"`
	PingInterval      time.Duration
}

// TLSConfig holds client TLS files for NATS.
type TLSConfig struct {
	CAFile   string `hcl:"ca_file,optional"`
	CertFile string `hcl:"cert_file,optional"`
	KeyFile  string `hcl:"key_file,optional"`

	DefRange      hcl.Range `hcl:",def_range"`
	CertFileRange hcl.Range `hcl:"cert_file,attr_value_range"`
	KeyFileRange  hcl.Range `hcl:"key_file,attr_value_range"`
}

// HTTPConfig enables the /metrics, /healthz, /readyz and /status endpoints.
// httpconfig.go checks and fills in the fields without an hcl tag.
type HTTPConfig struct {
	Listen string `hcl:"listen"`
	// SocketMode is the mode of a unix: listener's socket (default 0660).
	SocketModeS string `hcl:"socket_mode,optional"`
	// TokenFile holds the bearer token every request must carry.
	TokenFile string `hcl:"token_file,optional"`
	// Public lists endpoints answered without the token or client
	// certificate (only /healthz and /readyz may be listed).
	Public []string       `hcl:"public,optional"`
	TLS    *HTTPTLSConfig `hcl:"tls,block"`

	ListenRange     hcl.Range `hcl:"listen,attr_value_range"`
	SocketModeRange hcl.Range `hcl:"socket_mode,attr_value_range"`
	TokenFileRange  hcl.Range `hcl:"token_file,attr_value_range"`
	PublicRange     hcl.Range `hcl:"public,attr_value_range"`

	Network    string      // "tcp" or "unix"
	Address    string      // host:port, or the socket's path
	SocketMode os.FileMode // default DefaultSocketMode
}

// HTTPTLSConfig makes a TCP http listener serve HTTPS; with client_ca_file,
// every request must present a client certificate that CA signed.
type HTTPTLSConfig struct {
	CertFile     string `hcl:"cert_file"`
	KeyFile      string `hcl:"key_file"`
	ClientCAFile string `hcl:"client_ca_file,optional"`

	DefRange hcl.Range `hcl:",def_range"`
}

// PluginConf declares a WebAssembly apply plugin.
type PluginConf struct {
	Name           string            `hcl:"name,label"`
	Module         string            `hcl:"module"`
	SHA256         string            `hcl:"sha256,optional"`
	MemoryS        string            `hcl:"memory,optional"`
	TimeoutS       string            `hcl:"timeout,optional"`
	RenderTimeoutS string            `hcl:"render_timeout,optional"`
	Config         cty.Value         `hcl:"config,optional"`
	Limits         *PluginLimitsConf `hcl:"limits,block"`

	DefRange           hcl.Range `hcl:",def_range"`
	SHA256Range        hcl.Range `hcl:"sha256,attr_value_range"`
	MemoryRange        hcl.Range `hcl:"memory,attr_value_range"`
	TimeoutRange       hcl.Range `hcl:"timeout,attr_value_range"`
	RenderTimeoutRange hcl.Range `hcl:"render_timeout,attr_value_range"`

	Memory        int64         // bytes, default 64 MiB
	Timeout       time.Duration // per call but renders, default 5s
	RenderTimeout time.Duration // per render, default 10m
	// ConfigMap is config as the plugin reads it: strings as they are,
	// other values as JSON text.
	ConfigMap map[string]string
}

// PluginLimitsConf caps what one call of a plugin may stage. finalize always
// sets PluginConf.Limits, filling in the defaults of what is not written.
type PluginLimitsConf struct {
	MaxFilesS    string `hcl:"max_files,optional"`
	MaxBytesS    string `hcl:"max_bytes,optional"`
	MaxFileSizeS string `hcl:"max_file_size,optional"`

	MaxFilesRange    hcl.Range `hcl:"max_files,attr_value_range"`
	MaxBytesRange    hcl.Range `hcl:"max_bytes,attr_value_range"`
	MaxFileSizeRange hcl.Range `hcl:"max_file_size,attr_value_range"`

	MaxFiles    int   // staged writes and removals per call, default 2,000,000
	MaxBytes    int64 // bytes staged per call, default 4 GiB
	MaxFileSize int64 // bytes per staged file, default 16 MiB
}

// WatchConf declares one watch: a bucket (or some of its prefixes) handed to a plugin.
type WatchConf struct {
	Name     string        `hcl:"name,label"`
	Bucket   string        `hcl:"bucket"`
	Prefixes []string      `hcl:"prefixes,optional"`
	Plugin   string        `hcl:"plugin"`
	Fold     string        `hcl:"fold,optional"`
	Batch    *BatchConf    `hcl:"batch,block"`
	Wait     *WaitConf     `hcl:"wait,block"`
	Guard    *GuardConf    `hcl:"guard,block"`
	Outputs  []*OutputConf `hcl:"output,block"`
	Hooks    []*HookConf   `hcl:"hook,block"`
	// Bootstrap, when set, starts the watch from an artifact in NATS and
	// has it take part in export rounds (config_bootstrap.go).
	Bootstrap *BootstrapConf `hcl:"bootstrap,block"`
	// StaleAfterS is how long the watch may stay behind its bucket (not
	// caught up, or failing) before it counts as unhealthy; "0" disables.
	StaleAfterS string `hcl:"stale_after,optional"`
	// DriftCheckS is how often the watch's outputs are compared with what
	// it committed, "0" to never (default 5m).
	DriftCheckS string `hcl:"drift_check,optional"`

	DefRange        hcl.Range     `hcl:",def_range"`
	StaleAfterRange hcl.Range     `hcl:"stale_after,attr_value_range"`
	StaleAfter      time.Duration // default DefaultStaleAfter; 0 = never stale
	PrefixesRange   hcl.Range     `hcl:"prefixes,attr_range"`
	PluginRange     hcl.Range     `hcl:"plugin,attr_value_range"`
	FoldRange       hcl.Range     `hcl:"fold,attr_value_range"`
	BucketRange     hcl.Range     `hcl:"bucket,attr_value_range"`
	DriftRange      hcl.Range     `hcl:"drift_check,attr_value_range"`

	DriftCheck time.Duration // parsed drift_check; 0 = off
}

// Fold kinds: where a watch keeps its local copy of the bucket.
const (
	// FoldMemory is an append-only log on disk with the whole fold in
	// memory (the default; fastest, for what fits in RAM).
	FoldMemory = "memory"
	// FoldDisk is an on-disk LSM (Pebble), for folds larger than RAM.
	FoldDisk = "disk"
)

// BatchConf bounds a watch's batches. With no window, an idle watch applies
// a change at once, and the changes that arrive while a batch is applied
// form the next one; a restarted watch's backlog goes in batches of max
// (see kvcore.AppliedConfig.Window).
type BatchConf struct {
	WindowS string `hcl:"window,optional"`
	Max     int    `hcl:"max,optional"`

	WindowRange hcl.Range     `hcl:"window,attr_value_range"`
	MaxRange    hcl.Range     `hcl:"max,attr_value_range"`
	Window      time.Duration // 0: no window
}

// WaitConf is consul-template's wait: a batch is applied once no change
// arrived for min, and at the latest max after its first change.
type WaitConf struct {
	MinS string `hcl:"min"`
	MaxS string `hcl:"max,optional"`

	MinRange hcl.Range     `hcl:"min,attr_value_range"`
	MaxRange hcl.Range     `hcl:"max,attr_value_range"`
	Min, Max time.Duration // Max defaults to 4 × Min
}

// GuardConf bounds the deletions one batch may make before the watch holds
// it for confirmation (see DESIGN.md, invariant 11): a batch that removes at
// least MinDeletes keys and more than MaxDeleteFraction of the keys the watch
// held is not applied until `slipagent resync --confirm WATCH`.
type GuardConf struct {
	MaxDeleteFraction *float64 `hcl:"max_delete_fraction,optional"`
	MinDeletes        *int     `hcl:"min_deletes,optional"`
	// Allow turns the guard off: every batch is applied as it comes.
	Allow bool `hcl:"allow,optional"`

	FractionRange   hcl.Range `hcl:"max_delete_fraction,attr_value_range"`
	MinDeletesRange hcl.Range `hcl:"min_deletes,attr_value_range"`
	Fraction        float64   // default DefaultMaxDeleteFraction
	Min             int       // default DefaultMinDeletes
}

// OutputConf is a directory a watch's plugin may write below.
type OutputConf struct {
	Name  string `hcl:"name,label"`
	Dir   string `hcl:"dir"`
	ModeS string `hcl:"mode,optional"`
	Owner string `hcl:"owner,optional"`
	Group string `hcl:"group,optional"`

	DefRange   hcl.Range   `hcl:",def_range"`
	DirRange   hcl.Range   `hcl:"dir,attr_value_range"`
	ModeRange  hcl.Range   `hcl:"mode,attr_value_range"`
	OwnerRange hcl.Range   `hcl:"owner,attr_value_range"`
	GroupRange hcl.Range   `hcl:"group,attr_value_range"`
	Mode       os.FileMode // default 0644
	// FileOwner is owner and group resolved when the configuration loads
	// (hookuser.go): who the output's files belong to, nil to leave them
	// the agent's.
	FileOwner *host.Owner
}

// HookConf is a command a watch's plugin may request after its files are committed.
type HookConf struct {
	Name       string   `hcl:"name,label"`
	Command    []string `hcl:"command"`
	Check      []string `hcl:"check,optional"`
	TimeoutS   string   `hcl:"timeout,optional"`
	OnFailureS string   `hcl:"on_failure,optional"`

	DefRange       hcl.Range     `hcl:",def_range"`
	CommandRange   hcl.Range     `hcl:"command,attr_value_range"`
	CheckRange     hcl.Range     `hcl:"check,attr_range"`
	TimeoutRange   hcl.Range     `hcl:"timeout,attr_value_range"`
	OnFailureRange hcl.Range     `hcl:"on_failure,attr_value_range"`
	Timeout        time.Duration // default 30s
	OnFailure      OnFailure

	// SplayS and MinIntervalS space a hook's runs out (see config_hooks.go).
	SplayS           string        `hcl:"splay,optional"`
	MinIntervalS     string        `hcl:"min_interval,optional"`
	SplayRange       hcl.Range     `hcl:"splay,attr_value_range"`
	MinIntervalRange hcl.Range     `hcl:"min_interval,attr_value_range"`
	Splay            time.Duration // random delay before a run, 0 = none
	MinInterval      time.Duration // least time between two runs, 0 = none
	// Env is the environment of the hook's command and check (hookenv.go);
	// finalize always sets it.
	Env *HookEnvConf `hcl:"env,block"`
	// User and Group, when set, are who the hook's command and check run
	// as (names or numeric ids); RunAs is them resolved, nil to run as the
	// agent (hookuser.go).
	User       string    `hcl:"user,optional"`
	Group      string    `hcl:"group,optional"`
	UserRange  hcl.Range `hcl:"user,attr_value_range"`
	GroupRange hcl.Range `hcl:"group,attr_value_range"`
	RunAs      *RunAs
	// CheckInPlace runs Check with the new files at their final paths (the
	// old ones kept aside and restored if it fails), for checks that read
	// the live configuration, such as `nginx -t`.
	CheckInPlace bool `hcl:"check_in_place,optional"`
}

// OnFailure is what a failed hook (or check) does to its batch.
type OnFailure int

const (
	// FailRetry fails the batch: nothing is checkpointed and it is retried
	// with backoff (files of a failed check are not committed).
	FailRetry OnFailure = iota
	// FailIgnore logs the failure and carries on as if the hook succeeded.
	FailIgnore
)

// Defaults.
const (
	DefaultDataDir       = "/var/lib/slipagent"
	DefaultNATSURL       = "nats://127.0.0.1:4222"
	DefaultNATSTimeout   = 30 * time.Second
	DefaultPluginMemory  = 64 << 20
	DefaultPluginTimeout = 5 * time.Second
	// DefaultRenderTimeout bounds a full render, which may stage a file per
	// key of a bucket of millions.
	DefaultRenderTimeout = host.DefaultRenderTimeout
	// DefaultMaxFiles, DefaultMaxBytes and DefaultMaxFileSize are a plugin's
	// limits per call; plugins/ABI.md explains their sizing.
	DefaultMaxFiles    = host.DefaultMaxFiles
	DefaultMaxBytes    = host.DefaultMaxBytes
	DefaultMaxFileSize = host.DefaultMaxFileSize
	DefaultBatchMax    = 1000
	DefaultStaleAfter  = 2 * time.Minute
	// DefaultMaxDeleteFraction and DefaultMinDeletes: a batch removing at
	// least 10 keys and more than half of a watch's keys is held.
	DefaultMaxDeleteFraction = 0.5
	DefaultMinDeletes        = 10
	DefaultHookTimeout       = 30 * time.Second
	DefaultOutputMode        = 0o644
	DefaultDriftCheck        = 5 * time.Minute
)

var (
	nameRE   = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Load reads the configuration from path: one HCL file, or a directory whose
// *.hcl files are merged in lexical order (conf.d style). Relative paths in
// the configuration (modules, output dirs, data_dir, the NATS client's
// files) are relative to the directory holding the file that names them,
// and made absolute. A returned *ConfigError renders every problem with its
// file, line and source.
func Load(path string) (*Config, error) {
	files := []string{path}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("agent: config: %w", err)
	} else if fi.IsDir() {
		dir = path
		files, err = filepath.Glob(filepath.Join(path, "*.hcl"))
		if err != nil {
			return nil, fmt.Errorf("agent: config: %w", err)
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("agent: config: no *.hcl files in %s", path)
		}
		slices.Sort(files)
	}
	p := hclparse.NewParser()
	var parsed []*hcl.File
	var diags hcl.Diagnostics
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("agent: config: %w", err)
		}
		file, d := p.ParseHCL(src, f)
		diags = append(diags, d...)
		if !d.HasErrors() {
			diags = append(diags, checkNumbers(file)...)
		}
		parsed = append(parsed, file)
	}
	if diags.HasErrors() {
		return nil, &ConfigError{Diags: diags, Files: p.Files()}
	}
	cfg, diags := decode(hcl.MergeFiles(parsed), dir)
	if diags.HasErrors() {
		return nil, &ConfigError{Diags: diags, Files: p.Files()}
	}
	cfg.Files = files
	if files[0] != path {
		cfg.Files = append([]string{path}, files...)
	}
	return cfg, nil
}

// Parse decodes one configuration file held in memory. filename is used in
// diagnostics and to resolve relative paths.
func Parse(filename string, src []byte) (*Config, error) {
	p := hclparse.NewParser()
	file, diags := p.ParseHCL(src, filename)
	if !diags.HasErrors() {
		diags = append(diags, checkNumbers(file)...)
	}
	if diags.HasErrors() {
		return nil, &ConfigError{Diags: diags, Files: p.Files()}
	}
	cfg, diags := decode(file.Body, filepath.Dir(filename))
	if diags.HasErrors() {
		return nil, &ConfigError{Diags: diags, Files: p.Files()}
	}
	return cfg, nil
}

// ConfigError is a configuration that failed to parse or validate.
type ConfigError struct {
	Diags hcl.Diagnostics
	Files map[string]*hcl.File
}

// Error lists every diagnostic, one per line.
func (e *ConfigError) Error() string {
	lines := make([]string, len(e.Diags))
	for i, d := range e.Diags {
		lines[i] = d.Error()
	}
	return "agent: config: " + strings.Join(lines, "\n")
}

// Render writes the diagnostics with the offending source lines, the way
// HCL tools print them, with the passwords and tokens of URLs masked in
// those lines (they go to a terminal, or to the journal).
func (e *ConfigError) Render(w io.Writer) error {
	files := make(map[string]*hcl.File, len(e.Files))
	for name, f := range e.Files {
		masked := *f
		masked.Bytes = maskUserinfo(f.Bytes)
		files[name] = &masked
	}
	return hcl.NewDiagnosticTextWriter(w, files, 100, false).WriteDiagnostics(e.Diags)
}

// quotedPattern matches an HCL quoted string on one line.
var quotedPattern = regexp.MustCompile(`"(?:[^"\\\n]|\\.)*"`)

// maskUserinfo returns src with the user information of every URL in a
// quoted string replaced by as many 'x', so that the ranges of diagnostics
// still point where they did: in a string holding an '@', everything from
// after its first "://" (or its start) up to its last '@'. A password may
// hold what ends a URL elsewhere ('@', '/', ',' or a space, unescaped): the
// malformed URLs a diagnostic quotes are those. Other text with an '@' in
// a string (an e-mail address) is masked too.
func maskUserinfo(src []byte) []byte {
	out := bytes.Clone(src)
	for _, m := range quotedPattern.FindAllIndex(src, -1) {
		body := src[m[0]+1 : m[1]-1]
		at := bytes.LastIndexByte(body, '@')
		if at < 0 {
			continue
		}
		from := 0
		if i := bytes.Index(body, []byte("://")); i >= 0 && i < at {
			from = i + 3
		}
		for k := m[0] + 1 + from; k < m[0]+1+at; k++ {
			out[k] = 'x'
		}
	}
	return out
}

// evalContext offers env("NAME") to configurations, so secrets and
// per-host values can come from the service's environment.
var evalContext = &hcl.EvalContext{Functions: map[string]function.Function{
	"env": function.New(&function.Spec{
		Params: []function.Parameter{{Name: "name", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.StringVal(os.Getenv(args[0].AsString())), nil
		},
	}),
}}

// decode decodes a configuration whose file functions read from dir.
func decode(body hcl.Body, dir string) (*Config, hcl.Diagnostics) {
	cfg := &Config{}
	var inputs []string
	diags := gohcl.DecodeBody(body, fileEvalContext(dir, func(path string) { inputs = append(inputs, path) }), cfg)
	if diags.HasErrors() {
		return nil, diags
	}
	slices.Sort(inputs)
	cfg.Inputs = slices.Compact(inputs)
	diags = append(diags, cfg.finalize()...)
	return cfg, diags
}

// finalize applies defaults, parses typed values, resolves relative paths and
// checks cross-references.
func (c *Config) finalize() hcl.Diagnostics {
	var diags hcl.Diagnostics
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	c.DataDir = relativeTo(c.DataDirRange, c.DataDir)
	switch {
	case c.CacheDir != "":
		c.CacheDir = relativeTo(c.CacheDirRange, c.CacheDir)
	case os.Getenv("CACHE_DIRECTORY") != "":
		// systemd's CacheDirectory= (the first one, if several).
		c.CacheDir, _, _ = strings.Cut(os.Getenv("CACHE_DIRECTORY"), ":")
	default:
		c.CacheDir = filepath.Join(c.DataDir, "cache")
	}
	switch c.LogLevel {
	case "", "info":
		c.Level = slog.LevelInfo
	case "debug":
		c.Level = slog.LevelDebug
	case "warn":
		c.Level = slog.LevelWarn
	case "error":
		c.Level = slog.LevelError
	default:
		diags = append(diags, errAt(c.LogLevelRange, "Invalid log_level", `log_level is "debug", "info", "warn" or "error".`))
	}
	if c.NATS == nil {
		c.NATS = &NATSConfig{}
	}
	diags = c.NATS.finalizeServers(diags)
	c.NATS.Timeout, diags = parseDuration(c.NATS.TimeoutS, c.NATS.TimeoutRange, DefaultNATSTimeout, diags)
	diags = c.NATS.finalizeCreds(diags)
	c.NATS.CredsFile = relativeTo(c.NATS.CredsFileRange, c.NATS.CredsFile)
	if t := c.NATS.TLS; t != nil {
		t.CAFile = relativeTo(t.DefRange, t.CAFile)
		t.CertFile = relativeTo(t.DefRange, t.CertFile)
		t.KeyFile = relativeTo(t.DefRange, t.KeyFile)
		diags = t.finalize(diags)
	}
	diags = c.NATS.finalizeFleet(diags)
	if c.HTTP != nil {
		diags = c.HTTP.finalize(diags)
	}

	plugins := map[string]*PluginConf{}
	for _, p := range c.Plugins {
		if _, dup := plugins[p.Name]; dup {
			diags = append(diags, errAt(p.DefRange, "Duplicate plugin", fmt.Sprintf("A plugin named %q is already declared.", p.Name)))
		}
		plugins[p.Name] = p
		diags = append(diags, checkName("plugin", p.Name, p.DefRange)...)
		p.Module = relativeTo(p.DefRange, p.Module)
		if p.SHA256 != "" && !sha256RE.MatchString(p.SHA256) {
			diags = append(diags, errAt(p.SHA256Range, "Invalid sha256", "sha256 must be 64 lowercase hex digits."))
		}
		p.Memory, diags = parseSize(p.MemoryS, p.MemoryRange, DefaultPluginMemory, diags)
		p.Timeout, diags = parseDuration(p.TimeoutS, p.TimeoutRange, DefaultPluginTimeout, diags)
		p.RenderTimeout, diags = parseDuration(p.RenderTimeoutS, p.RenderTimeoutRange, DefaultRenderTimeout, diags)
		if p.Limits == nil {
			p.Limits = &PluginLimitsConf{}
		}
		diags = p.Limits.finalize(diags)
		p.ConfigMap, diags = pluginConfig(p, diags)
	}

	// Programs first: placing an output checks it against every file the
	// agent trusts, the hook programs of every watch among them.
	for _, w := range c.Watches {
		for _, h := range w.Hooks {
			h.Command = programRelativeTo(h.CommandRange, h.Command)
			h.Check = programRelativeTo(h.CheckRange, h.Check)
		}
	}
	watches := map[string]bool{}
	var placed []placedOutput // every output, to refuse overlapping directories
	for _, w := range c.Watches {
		duplicate := watches[w.Name]
		if duplicate {
			diags = append(diags, errAt(w.DefRange, "Duplicate watch", fmt.Sprintf("A watch named %q is already declared.", w.Name)))
		}
		watches[w.Name] = true
		diags = append(diags, checkName("watch", w.Name, w.DefRange)...)
		if !kvcore.ValidBucket(w.Bucket) {
			diags = append(diags, errAt(w.BucketRange, "Invalid bucket name", "A bucket name is letters, digits, '-' and '_'."))
		}
		// An explicit empty list is refused: it never means "the whole bucket".
		if w.PrefixesRange.Filename != "" && len(w.Prefixes) == 0 {
			diags = append(diags, errAt(w.PrefixesRange, "Empty prefixes", "prefixes lists no prefix. Remove the attribute to watch the whole bucket."))
		}
		for _, p := range w.Prefixes {
			if p == "" || !kvcore.ValidPrefix(p) {
				diags = append(diags, errAt(w.PrefixesRange, "Invalid prefix", fmt.Sprintf("%q is not a key prefix: keys are letters, digits and -/_=. with no empty dot-separated part.", p)))
			}
		}
		if _, ok := plugins[w.Plugin]; !ok {
			diags = append(diags, errAt(w.PluginRange, "Unknown plugin", fmt.Sprintf("No plugin block is named %q.", w.Plugin)))
		}
		switch w.Fold {
		case "":
			w.Fold = FoldMemory
		case FoldMemory, FoldDisk:
		default:
			diags = append(diags, errAt(w.FoldRange, "Invalid fold", `fold is "memory" (a log with the fold in RAM) or "disk" (an on-disk LSM for folds larger than RAM).`))
		}
		if w.Batch == nil {
			w.Batch = &BatchConf{}
		}
		if w.Batch.WindowS != "0" {
			w.Batch.Window, diags = parseDuration(w.Batch.WindowS, w.Batch.WindowRange, 0, diags)
		}
		if wt := w.Wait; wt != nil {
			wt.Min, diags = parseDuration(wt.MinS, wt.MinRange, 0, diags)
			wt.Max, diags = parseDuration(wt.MaxS, wt.MaxRange, 4*wt.Min, diags)
			if wt.Max < wt.Min {
				diags = append(diags, errAt(wt.MaxRange, "Invalid wait", fmt.Sprintf("max (%v) is shorter than min (%v).", wt.Max, wt.Min)))
			}
			if w.Batch.WindowS != "" {
				diags = append(diags, errAt(w.Batch.WindowRange, "Conflicting settings", "a watch has either a batch window or a wait block, not both."))
			}
		}
		switch {
		case w.Batch.Max == 0:
			w.Batch.Max = DefaultBatchMax
		case w.Batch.Max < 0:
			diags = append(diags, errAt(w.Batch.MaxRange, "Invalid batch max", "max must be positive."))
		}
		diags = watchGuard(w, diags)
		diags = watchBootstrap(w, diags)
		w.DriftCheck, diags = parseDriftCheck(w.DriftCheckS, w.DriftRange, diags)
		outputs := map[string]bool{}
		for _, o := range w.Outputs {
			repeated := duplicate || outputs[o.Name]
			if outputs[o.Name] {
				diags = append(diags, errAt(o.DefRange, "Duplicate output", fmt.Sprintf("Watch %q already has an output named %q.", w.Name, o.Name)))
			}
			outputs[o.Name] = true
			diags = append(diags, checkName("output", o.Name, o.DefRange)...)
			if o.Dir == "" {
				diags = append(diags, errAt(o.DirRange, "Empty output dir", "dir must name a directory."))
			}
			o.Dir = filepath.Clean(relativeTo(o.DefRange, o.Dir))
			o.Mode, diags = parseMode(o.ModeS, o.ModeRange, diags)
			diags = o.finalizeOwner(w.Name, diags)
			others := placed
			if repeated { // its overlap with its first copy is that error's, not another
				others = slices.DeleteFunc(slices.Clone(placed), func(p placedOutput) bool {
					return p.watch == w.Name && (duplicate || p.Name == o.Name)
				})
			}
			var p placedOutput
			p, diags = c.placeOutput(w.Name, o, others, diags)
			if !repeated {
				placed = append(placed, p)
			}
		}
		hooks := map[string]bool{}
		for _, h := range w.Hooks {
			if hooks[h.Name] {
				diags = append(diags, errAt(h.DefRange, "Duplicate hook", fmt.Sprintf("Watch %q already has a hook named %q.", w.Name, h.Name)))
			}
			hooks[h.Name] = true
			diags = append(diags, checkName("hook", h.Name, h.DefRange)...)
			if len(h.Command) == 0 || h.Command[0] == "" {
				diags = append(diags, errAt(h.CommandRange, "Empty hook command", "command is the program and its arguments, e.g. [\"systemctl\", \"reload\", \"nginx\"]."))
			}
			if h.CheckRange.Filename != "" && (len(h.Check) == 0 || h.Check[0] == "") {
				diags = append(diags, errAt(h.CheckRange, "Empty check command", "check is the program and its arguments; remove it to skip the check."))
			}
			h.Timeout, diags = parseDuration(h.TimeoutS, h.TimeoutRange, DefaultHookTimeout, diags)
			switch h.OnFailureS {
			case "", "retry":
				h.OnFailure = FailRetry
			case "ignore":
				h.OnFailure = FailIgnore
			default:
				diags = append(diags, errAt(h.OnFailureRange, "Invalid on_failure", `on_failure is "retry" (the batch fails and is retried) or "ignore".`))
			}
			diags = hookTiming(h, diags)
			diags = h.finalizeEnv(w.Name, diags)
			diags = h.finalizeRunAs(w.Name, diags)
		}
	}
	if c.Report != nil {
		diags = c.Report.finalize(diags)
	}
	return diags
}

func (l *PluginLimitsConf) finalize(diags hcl.Diagnostics) hcl.Diagnostics {
	l.MaxFiles = DefaultMaxFiles
	if l.MaxFilesS != "" {
		n, err := strconv.Atoi(l.MaxFilesS)
		if err != nil || n <= 0 {
			diags = append(diags, errAt(l.MaxFilesRange, "Invalid max_files", fmt.Sprintf("%q is not a positive number of files.", l.MaxFilesS)))
		} else {
			l.MaxFiles = n
		}
	}
	l.MaxBytes, diags = parseSize(l.MaxBytesS, l.MaxBytesRange, DefaultMaxBytes, diags)
	l.MaxFileSize, diags = parseSize(l.MaxFileSizeS, l.MaxFileSizeRange, DefaultMaxFileSize, diags)
	return diags
}

// pluginConfig flattens a plugin's config object into the string map
// plugins read: a string stays as it is, anything else becomes its JSON text.
func pluginConfig(p *PluginConf, diags hcl.Diagnostics) (map[string]string, hcl.Diagnostics) {
	m := map[string]string{}
	if p.Config.IsNull() {
		return m, diags
	}
	t := p.Config.Type()
	if !t.IsObjectType() && !t.IsMapType() {
		return m, append(diags, errAt(p.DefRange, "Invalid plugin config", "config must be an object such as { key = \"value\" }."))
	}
	for it := p.Config.ElementIterator(); it.Next(); {
		k, v := it.Element()
		if v.Type() == cty.String && v.IsKnown() && !v.IsNull() {
			m[k.AsString()] = v.AsString()
			continue
		}
		js, err := ctyjson.Marshal(v, v.Type())
		if err != nil {
			return m, append(diags, errAt(p.DefRange, "Invalid plugin config", fmt.Sprintf("%s: %v", k.AsString(), err)))
		}
		m[k.AsString()] = string(js)
	}
	return m, diags
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func checkName(kind, name string, rng hcl.Range) hcl.Diagnostics {
	if nameRE.MatchString(name) {
		return nil
	}
	return hcl.Diagnostics{errAt(rng, "Invalid "+kind+" name", fmt.Sprintf("%q: a %s name is letters, digits, '-' and '_'.", name, kind))}
}

// watchGuard fills in a watch's stale_after and guard settings.
func watchGuard(w *WatchConf, diags hcl.Diagnostics) hcl.Diagnostics {
	if w.StaleAfterS == "0" {
		w.StaleAfter = 0
	} else {
		w.StaleAfter, diags = parseDuration(w.StaleAfterS, w.StaleAfterRange, DefaultStaleAfter, diags)
	}
	if w.Guard == nil {
		w.Guard = &GuardConf{}
	}
	g := w.Guard
	g.Fraction, g.Min = DefaultMaxDeleteFraction, DefaultMinDeletes
	if f := g.MaxDeleteFraction; f != nil {
		if *f <= 0 || *f > 1 {
			diags = append(diags, errAt(g.FractionRange, "Invalid max_delete_fraction", "max_delete_fraction is a fraction of the watch's keys, above 0 and at most 1 (0.5 holds a batch that removes more than half of them)."))
		}
		g.Fraction = *f
	}
	if m := g.MinDeletes; m != nil {
		if *m < 1 {
			diags = append(diags, errAt(g.MinDeletesRange, "Invalid min_deletes", "min_deletes is a count of keys, at least 1."))
		}
		g.Min = *m
	}
	return diags
}

func errAt(rng hcl.Range, summary, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: rng.Ptr()}
}

func parseDuration(s string, rng hcl.Range, def time.Duration, diags hcl.Diagnostics) (time.Duration, hcl.Diagnostics) {
	if s == "" {
		return def, diags
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return def, append(diags, errAt(rng, "Invalid duration", fmt.Sprintf("%q is not a positive duration such as \"500ms\", \"5s\" or \"1m\".", s)))
	}
	return d, diags
}

// parseDriftCheck reads drift_check: a positive duration, or "0" (any zero
// duration) to turn drift checks off.
func parseDriftCheck(s string, rng hcl.Range, diags hcl.Diagnostics) (time.Duration, hcl.Diagnostics) {
	if s == "0" {
		return 0, diags
	}
	if d, err := time.ParseDuration(s); err == nil && d == 0 {
		return 0, diags
	}
	return parseDuration(s, rng, DefaultDriftCheck, diags)
}

// parseSize reads sizes such as "64MiB", "512KiB", "1GiB" or a plain byte count.
func parseSize(s string, rng hcl.Range, def int64, diags hcl.Diagnostics) (int64, hcl.Diagnostics) {
	if s == "" {
		return def, diags
	}
	num, mult := s, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return def, append(diags, errAt(rng, "Invalid size", fmt.Sprintf("%q is not a size such as \"64MiB\", \"512KiB\" or \"1GiB\".", s)))
	}
	return n * mult, diags
}

func parseMode(s string, rng hcl.Range, diags hcl.Diagnostics) (os.FileMode, hcl.Diagnostics) {
	if s == "" {
		return DefaultOutputMode, diags
	}
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o777 {
		return DefaultOutputMode, append(diags, errAt(rng, "Invalid mode", fmt.Sprintf("%q is not an octal file mode such as \"0644\".", s)))
	}
	return os.FileMode(m), diags
}

// programRelativeTo resolves a command's program given by a relative path
// ("bin/reload.sh", "./x") against the directory of the file that names it,
// as every other path of the configuration; a bare name ("systemctl") is
// looked up in PATH when it runs, and the arguments stay as they are.
func programRelativeTo(rng hcl.Range, argv []string) []string {
	if len(argv) == 0 || !strings.ContainsRune(argv[0], filepath.Separator) || filepath.IsAbs(argv[0]) {
		return argv
	}
	return append([]string{relativeTo(rng, argv[0])}, argv[1:]...)
}

// relativeTo resolves a relative path against the directory of the file
// where rng lies, to an absolute path: however the configuration's path
// was spelled (relative to another working directory, or absolute), its
// paths come out the same, and so does what depends on them (the render
// key of a watch's outputs).
func relativeTo(rng hcl.Range, path string) string {
	if filepath.IsAbs(path) {
		return filepath.Clean(path) // what the trust checks look at is what is opened
	}
	if path == "" || rng.Filename == "" {
		return path
	}
	path = filepath.Join(filepath.Dir(rng.Filename), path)
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path // no working directory to resolve it against: it stays relative to it
}
