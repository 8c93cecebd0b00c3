package agent

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/slipstreamkv/slipstream/kvcore/natskv"
)

// finalizeServers checks the servers of the nats block as nats.go reads
// them (natskv.CheckServers): a URL no connection could ever use is a
// configuration error, not a server to wait for. Without the attribute the
// agent connects to DefaultNATSURL; an empty list is refused, as it names
// no server.
func (n *NATSConfig) finalizeServers(diags hcl.Diagnostics) hcl.Diagnostics {
	if len(n.Servers) == 0 {
		if n.ServersRange.Filename != "" {
			diags = append(diags, errAt(n.ServersRange, "Empty nats servers", fmt.Sprintf("nats servers lists no server. Name one, e.g. [%q], or remove the attribute for that default.", DefaultNATSURL)))
		}
		n.Servers = []string{DefaultNATSURL}
		return diags
	}
	if err := natskv.CheckServers(n.Servers); err != nil {
		var se *natskv.ServerURLError
		detail := err.Error()
		if errors.As(err, &se) {
			detail = fmt.Sprintf("nats servers: %q: %s.", se.URL, se.Reason)
		}
		diags = append(diags, errAt(n.ServersRange, "Invalid nats server URL", detail))
	}
	return diags
}

// finalizeCreds refuses credentials set to nothing, as env("NAME") of a
// variable the service's environment lacks is: connecting without them
// would end in a bare authorization violation, far from the cause.
func (n *NATSConfig) finalizeCreds(diags hcl.Diagnostics) hcl.Diagnostics {
	for _, a := range []struct {
		name, value string
		rng         hcl.Range
	}{{"creds", n.Creds, n.CredsRange}, {"creds_file", n.CredsFile, n.CredsFileRange}} {
		if a.rng.Filename != "" && strings.TrimSpace(a.value) == "" {
			diags = append(diags, errAt(a.rng, "Empty nats "+a.name, fmt.Sprintf("nats %s is empty (env(\"NAME\") is, for a variable the agent's environment lacks): set it, or remove the attribute to connect without credentials.", a.name)))
		}
	}
	return diags
}

// finalize checks that the client certificate and its key come together:
// nats.go loads them as a pair.
func (t *TLSConfig) finalize(diags hcl.Diagnostics) hcl.Diagnostics {
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		diags = append(diags, errAt(t.CertFileRange, "Missing nats tls key_file", "nats tls cert_file needs the certificate's key_file."))
	case t.KeyFile != "" && t.CertFile == "":
		diags = append(diags, errAt(t.KeyFileRange, "Missing nats tls cert_file", "nats tls key_file needs the certificate's cert_file."))
	}
	return diags
}

// checkNATSTLS reads the NATS client's TLS files as nats.go does when it
// connects (a CA bundle, a certificate and its key): a file that cannot be
// read or does not parse is an error naming the setting and the file, as
// no retry would mend it.
func checkNATSTLS(t *TLSConfig) error {
	if t == nil {
		return nil
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err == nil && !x509.NewCertPool().AppendCertsFromPEM(pem) {
			err = errors.New("no PEM certificate in it")
		}
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Path == t.CAFile {
			err = pe.Err // the path is named once
		}
		if err != nil {
			return fmt.Errorf("agent: nats tls ca_file %s: %w", t.CAFile, err)
		}
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err == nil {
			_, err = x509.ParseCertificate(cert.Certificate[0])
		}
		var pe *fs.PathError
		if errors.As(err, &pe) && (pe.Path == t.CertFile || pe.Path == t.KeyFile) {
			setting := "cert_file"
			if pe.Path != t.CertFile {
				setting = "key_file"
			}
			return fmt.Errorf("agent: nats tls %s %s: %w", setting, pe.Path, pe.Err)
		}
		if err != nil {
			return fmt.Errorf("agent: nats tls cert_file %s, key_file %s: %w", t.CertFile, t.KeyFile, err)
		}
	}
	return nil
}
