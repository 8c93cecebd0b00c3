package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckDataDir: a data_dir that is a file, lies below one, or cannot be
// listed is refused, naming the setting, the path and where it is set; one
// that does not exist yet is for Run to create.
func TestCheckDataDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "afile")
	if err := os.WriteFile(file, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	locked := filepath.Join(dir, "locked")
	if err := os.Mkdir(locked, 0); err != nil {
		t.Fatal(err)
	}
	hcl := filepath.Join(dir, "agent.hcl")
	for _, tc := range []struct {
		name, dataDir, want string // want "": accepted
		asRoot              bool   // skipped as root, which reads any directory
	}{
		{"a directory", dir, "", false},
		{"missing", filepath.Join(dir, "new", "data"), "", false},
		{"a file", file, "agent: " + hcl + ":1: data_dir " + file + ": not a directory", false},
		{"below a file", filepath.Join(file, "data"), "agent: " + hcl + ":1: data_dir " + filepath.Join(file, "data") + ": " + file + " is not a directory", false},
		{"unreadable", locked, "agent: " + hcl + ":1: data_dir " + locked + ": permission denied", true},
		{"below an unreadable directory", filepath.Join(locked, "data"), "agent: " + hcl + ":1: data_dir " + filepath.Join(locked, "data") + ": permission denied", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.asRoot && os.Geteuid() == 0 {
				t.Skip("root reads every directory")
			}
			cfg, err := Parse(hcl, []byte(`data_dir = "`+tc.dataDir+`"`))
			if err != nil {
				t.Fatal(err)
			}
			err = checkDataDir(cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("checkDataDir = %v, want it accepted", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Errorf("checkDataDir = %v, want %q", err, tc.want)
			}
		})
	}
	cfg, err := Parse(hcl, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = file // as if the default were a file
	if err := checkDataDir(cfg); err == nil || !strings.Contains(err.Error(), "data_dir "+file+" (the default): not a directory") {
		t.Errorf("checkDataDir of the default = %v, want it named the default", err)
	}
}
