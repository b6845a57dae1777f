package testpeer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// certLifetime is how long a test certificate is valid either side of now,
// so that clock steps during a run do not expire it.
const certLifetime = 24 * time.Hour

// CertPair is a self-signed ECDSA P-256 certificate and its key, for
// localhost, 127.0.0.1 and ::1. It is its own CA, so a pool holding it
// verifies it in Go and in OpenSSL-based peers (redis-server, ffmpeg).
type CertPair struct {
	Cert    *x509.Certificate
	CertPEM []byte // "CERTIFICATE" block
	KeyPEM  []byte // "PRIVATE KEY" block (PKCS #8)
}

// SelfSigned returns a new pair whose certificate has the given serial
// number, which tests use to tell which certificate a server presents.
func SelfSigned(t testing.TB, serial int64) CertPair {
	t.Helper()
	pair, err := newSelfSigned(serial, time.Now())
	if err != nil {
		t.Fatalf("testpeer: self-signed certificate: %v", err)
	}
	return pair
}

func newSelfSigned(serial int64, now time.Time) (CertPair, error) {
	if serial <= 0 {
		return CertPair{}, fmt.Errorf("serial %d: want a positive number", serial)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return CertPair{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: fmt.Sprintf("rtmp-server test %d", serial)},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:             now.Add(-certLifetime),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return CertPair{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return CertPair{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return CertPair{}, err
	}
	return CertPair{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// Serial returns the certificate's serial number.
func (p CertPair) Serial() int64 { return p.Cert.SerialNumber.Int64() }

// Roots returns a pool that trusts the certificate.
func (p CertPair) Roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.Cert)
	return pool
}

// TLSCertificate returns the pair for a tls.Config's Certificates.
func (p CertPair) TLSCertificate(t testing.TB) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
	if err != nil {
		t.Fatalf("testpeer: key pair: %v", err)
	}
	return c
}

// WriteFiles writes the certificate and the key to certFile and keyFile
// (mode 0600), replacing them in place; an empty path skips that file.
func (p CertPair) WriteFiles(t testing.TB, certFile, keyFile string) {
	t.Helper()
	for _, f := range []struct {
		path string
		data []byte
	}{{certFile, p.CertPEM}, {keyFile, p.KeyPEM}} {
		if f.path == "" {
			continue
		}
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			t.Fatalf("testpeer: %v", err)
		}
	}
}

// WriteTemp writes the pair to cert.pem and key.pem in a new temporary
// directory of t and returns their paths.
func (p CertPair) WriteTemp(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	p.WriteFiles(t, certFile, keyFile)
	return certFile, keyFile
}
