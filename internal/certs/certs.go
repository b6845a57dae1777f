// Package certs holds the TLS certificate that RTMPS serves and replaces it
// when its files change, without dropping connections or restarting.
package certs

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Errors that name why a certificate pair cannot be served; Load, Reload and
// SetFiles wrap them with the file names.
var (
	ErrMismatch      = errors.New("certs: certificate and key do not match")
	ErrNoCertificate = errors.New("certs: no certificate in file")
	ErrNoKey         = errors.New("certs: no private key in file")
	ErrNoFiles       = errors.New("certs: certificate and key files must both be set")
)

// Reloader serves a certificate and key pair read from PEM files through
// tls.Config.GetCertificate, and replaces it when Reload, SetFiles or Watch
// finds new files that load. A pair that fails to load never replaces the one
// being served. A Reloader is safe for concurrent use.
type Reloader struct {
	logger *slog.Logger // immutable

	// current is read by every handshake without locking; written under mu.
	current atomic.Pointer[tls.Certificate]

	mu       sync.Mutex        // serialises Reload and SetFiles
	certFile string            // guarded by mu
	keyFile  string            // guarded by mu
	loaded   [sha256.Size]byte // guarded by mu; hash of the pair being served
	lastErr  error             // guarded by mu; the last failure, nil after a success
	failed   func(error)       // guarded by mu; set by OnFailure
}

// Load reads and checks the pair once. An error here is a start-up error:
// there is nothing to serve yet. A nil logger discards the Reloader's logs,
// for a configuration check that only wants the error.
func Load(certFile, keyFile string, logger *slog.Logger) (*Reloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, ErrNoFiles
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p, err := readPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	cert, err := p.parse()
	if err != nil {
		return nil, err
	}
	r := &Reloader{logger: logger, certFile: certFile, keyFile: keyFile, loaded: p.sum}
	r.current.Store(cert)
	logger.Info("certs: certificate loaded", certAttrs(certFile, cert)...)
	return r, nil
}

// GetCertificate returns the certificate being served; it is meant for
// tls.Config.GetCertificate and never fails.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.current.Load(), nil
}

// TLSConfig returns a new server configuration for RTMPS that serves the
// current certificate at every handshake, refuses protocols older than
// TLS 1.2 and issues no session tickets.
//
// Tickets buy nothing here (an RTMP session is long-lived, there is nothing
// to resume) and cost interoperability: librtmp built on GnuTLS (rtmpdump,
// GStreamer's rtmpsink, the stacks of many hardware encoders) drops the
// connection when a TLS 1.3 ticket arrives right after the handshake.
func (r *Reloader) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS12,
		GetCertificate:         r.GetCertificate,
		SessionTicketsDisabled: true,
	}
}

// Reload re-reads the files. Without force it replaces the certificate only
// when the contents of either file differ from the pair being served (a
// content hash: timestamps are too coarse to see two writes in a row). It
// reports whether a different pair is now being served.
//
// A pair that cannot be read, parsed or matched is logged and returned as an
// error, and the previous certificate keeps serving; callers need not log the
// error again. Without force, a failure that repeats the previous one is
// returned but not logged again, so Watch does not fill the log.
func (r *Reloader) Reload(force bool) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked(force)
}

// SetFiles switches to other files, as a configuration reload does, and tries
// them at once. The new names are kept even when the pair fails to load, so a
// later Reload or Watch picks them up once they are valid; until then the
// previous certificate keeps serving. Results are those of Reload.
func (r *Reloader) SetFiles(certFile, keyFile string) (bool, error) {
	if certFile == "" || keyFile == "" {
		return false, ErrNoFiles
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if certFile == r.certFile && keyFile == r.keyFile {
		return r.reloadLocked(false)
	}
	r.logger.Info("certs: switching files", "cert_file", certFile, "key_file", keyFile)
	r.certFile, r.keyFile = certFile, keyFile
	return r.reloadLocked(true)
}

// Watch calls Reload(false) every interval until ctx ends; failures are
// logged by Reload. With interval 0 or less it returns at once.
func (r *Reloader) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			r.Reload(false) // logged by Reload
		}
	}
}

// OnFailure makes f hear every failed load of Reload, SetFiles and Watch,
// repeated ones included (the log shows a repeated failure once), with the
// error Reload returns. f runs with the Reloader's lock held: it must be
// quick and must not call the Reloader.
func (r *Reloader) OnFailure(f func(error)) {
	r.mu.Lock()
	r.failed = f
	r.mu.Unlock()
}

// NotAfter returns the end of validity of the certificate being served.
func (r *Reloader) NotAfter() time.Time {
	return r.current.Load().Leaf.NotAfter
}

// Serial returns the serial number of the leaf certificate being served.
func (r *Reloader) Serial() *big.Int {
	return new(big.Int).Set(r.current.Load().Leaf.SerialNumber)
}

func (r *Reloader) reloadLocked(force bool) (bool, error) {
	p, err := readPair(r.certFile, r.keyFile)
	if err != nil {
		return false, r.failLocked(err, force)
	}
	if !force && p.sum == r.loaded {
		r.lastErr = nil
		return false, nil
	}
	cert, err := p.parse()
	if err != nil {
		return false, r.failLocked(err, force)
	}
	r.lastErr = nil
	changed := p.sum != r.loaded
	r.loaded = p.sum
	r.current.Store(cert)
	if changed {
		r.logger.Info("certs: certificate reloaded", certAttrs(r.certFile, cert)...)
	}
	return changed, nil
}

// failLocked logs err unless it repeats the previous failure of an unforced
// reload, records it and returns it.
func (r *Reloader) failLocked(err error, force bool) error {
	if force || r.lastErr == nil || r.lastErr.Error() != err.Error() {
		r.logger.Error("certs: cannot load certificate, keeping the current one",
			"cert_file", r.certFile, "key_file", r.keyFile, "err", err)
	}
	r.lastErr = err
	if r.failed != nil {
		r.failed(err)
	}
	return err
}

// pair is the contents of a certificate file and a key file.
type pair struct {
	certFile, keyFile string
	certPEM, keyPEM   []byte
	sum               [sha256.Size]byte // hash of both contents
}

func readPair(certFile, keyFile string) (pair, error) {
	p := pair{certFile: certFile, keyFile: keyFile}
	var err error
	if p.certPEM, err = os.ReadFile(certFile); err != nil {
		return p, fmt.Errorf("certs: %w", err)
	}
	if p.keyPEM, err = os.ReadFile(keyFile); err != nil {
		return p, fmt.Errorf("certs: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%d:", len(p.certPEM))
	h.Write(p.certPEM)
	h.Write(p.keyPEM)
	h.Sum(p.sum[:0])
	return p, nil
}

// parse returns the certificate the pair holds, or an error that tells an
// unreadable file from a key that belongs to another certificate.
func (p pair) parse() (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair(p.certPEM, p.keyPEM)
	if err == nil {
		if cert.Leaf == nil { // GODEBUG=x509keypairleaf=0
			if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
				return nil, fmt.Errorf("%w %s: %v", ErrNoCertificate, p.certFile, err)
			}
		}
		return &cert, nil
	}
	leaf, lerr := parseLeaf(p.certPEM)
	if lerr != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrNoCertificate, p.certFile, lerr)
	}
	key, kerr := parseKey(p.keyPEM)
	if kerr != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrNoKey, p.keyFile, kerr)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); ok && !pub.Equal(leaf.PublicKey) {
		return nil, fmt.Errorf("%w: %s, %s", ErrMismatch, p.certFile, p.keyFile)
	}
	return nil, fmt.Errorf("certs: %s, %s: %w", p.certFile, p.keyFile, err)
}

// parseLeaf returns the first certificate in certPEM.
func parseLeaf(certPEM []byte) (*x509.Certificate, error) {
	for rest := certPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no CERTIFICATE block")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

// parseKey returns the first private key in keyPEM, in any of the encodings
// crypto/tls accepts.
func parseKey(keyPEM []byte) (crypto.Signer, error) {
	for rest := keyPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PRIVATE KEY block")
		}
		switch block.Type {
		case "PRIVATE KEY":
			key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, err
			}
			signer, ok := key.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("unsupported key type %T", key)
			}
			return signer, nil
		case "RSA PRIVATE KEY":
			return x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			return x509.ParseECPrivateKey(block.Bytes)
		}
	}
}

// certAttrs describes a certificate for the log.
func certAttrs(file string, cert *tls.Certificate) []any {
	leaf := cert.Leaf
	return []any{
		"cert_file", file,
		"subject", leaf.Subject.String(),
		"dns_names", leaf.DNSNames,
		"serial", leaf.SerialNumber.Text(16),
		"not_after", leaf.NotAfter.UTC(),
	}
}
