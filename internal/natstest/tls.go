package natstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TLSFiles are the PEM files of a throwaway certificate authority, the
// server certificate it signed for 127.0.0.1 and localhost, and a client
// certificate it signed (for mutual TLS).
type TLSFiles struct {
	CAFile         string
	CertFile       string
	KeyFile        string
	ClientCertFile string
	ClientKeyFile  string
	// Option makes the server require TLS with that certificate.
	Option Option
}

// TLS creates a self-signed CA, a server and a client certificate in
// tb.TempDir().
func TLS(tb testing.TB) TLSFiles {
	tb.Helper()
	must := func(err error) {
		if err != nil {
			tb.Fatalf("natstest: tls setup: %v", err)
		}
	}
	dir := tb.TempDir()
	now := time.Now()

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "natstest CA " + rand.Text()}, // each call's its own: a client asks for its CA by name
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(err)
	ca, err := x509.ParseCertificate(caDER)
	must(err)

	// issue writes a certificate the CA signed, and its key, as name.pem
	// and name-key.pem.
	issue := func(serial int64, name string, tmpl *x509.Certificate) (certFile, keyFile string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		must(err)
		keyDER, err := x509.MarshalECPrivateKey(key)
		must(err)
		certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		must(os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
		must(os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
		return certFile, keyFile
	}

	f := TLSFiles{CAFile: filepath.Join(dir, "ca.pem")}
	must(os.WriteFile(f.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600))
	f.CertFile, f.KeyFile = issue(2, "server", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:    []string{"localhost"},
	})
	f.ClientCertFile, f.ClientKeyFile = issue(3, "client", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "natstest client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})

	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	must(err)
	f.Option = func(o *server.Options) {
		o.TLS = true
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		o.TLSTimeout = 5
	}
	return f
}
