package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
)

// formats are the nFPM packagers built, beside the tarball.
var formats = []string{"deb", "rpm"}

// build writes the tarball and one package per format into opts.Out and
// returns their paths.
func build(opts options) ([]string, error) {
	if opts.Version == "" {
		return nil, fmt.Errorf("no -version given (make dist passes git describe's)")
	}
	c, err := contents(opts)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, err
	}
	version := packageVersion(opts.Version)
	tarball := filepath.Join(opts.Out, fmt.Sprintf("slipagent_%s_linux_%s.tar.gz", version, opts.Arch))
	if err := writeTarball(tarball, c); err != nil {
		return nil, err
	}
	built := []string{tarball}
	for _, format := range formats {
		path, err := writePackage(opts, format, version)
		if err != nil {
			return nil, err
		}
		built = append(built, path)
	}
	return built, nil
}

// scripts are the maintainer scripts of a package of format, in
// contrib/packaging: systemd reloads its units after an install, an upgrade
// restarts a running agent, a removal stops and disables it, and a .deb's
// purge removes its state.
func scripts(root, format string) nfpm.Scripts {
	dir := filepath.Join(root, "contrib", "packaging")
	if format == "rpm" {
		return nfpm.Scripts{
			PostInstall: filepath.Join(dir, "rpm-post"),
			PreRemove:   filepath.Join(dir, "rpm-preun"),
			PostRemove:  filepath.Join(dir, "rpm-postun"),
		}
	}
	return nfpm.Scripts{
		PostInstall: filepath.Join(dir, "deb-postinst"),
		PreRemove:   filepath.Join(dir, "deb-prerm"),
		PostRemove:  filepath.Join(dir, "deb-postrm"),
	}
}

// writePackage builds one package. nFPM rewrites the contents it is given
// for its format, so each package gets a fresh list.
func writePackage(opts options, format, version string) (string, error) {
	packager, err := nfpm.Get(format)
	if err != nil {
		return "", err
	}
	c, err := contents(opts)
	if err != nil {
		return "", err
	}
	info := nfpm.WithDefaults(&nfpm.Info{
		Name:          "slipagent",
		Arch:          opts.Arch,
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none",
		Section:       "net",
		Maintainer:    "slipstream",
		Description:   "Watches NATS JetStream KV buckets and renders files through sandboxed WebAssembly plugins.",
		Vendor:        "slipstream",
		Homepage:      "https://github.com/slipstreamkv/slipstream",
		Overridables:  nfpm.Overridables{Contents: c, Scripts: scripts(opts.Root, format)},
	})
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return "", fmt.Errorf("%s package: %w", format, err)
	}
	path := filepath.Join(opts.Out, packager.ConventionalFileName(info))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := packager.Package(info, f); err != nil {
		f.Close()
		return "", fmt.Errorf("%s package %s: %w", format, path, err)
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return path, nil
}
