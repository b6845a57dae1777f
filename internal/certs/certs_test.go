package certs

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// ioDeadline bounds every network wait in these tests.
const ioDeadline = 10 * time.Second

// newPair returns a self-signed certificate for localhost with its key.
func newPair(t *testing.T, serial int64) testpeer.CertPair { return testpeer.SelfSigned(t, serial) }

// files are the two paths a Reloader reads.
type files struct{ cert, key string }

func newFiles(t *testing.T) files {
	dir := t.TempDir()
	return files{filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem")}
}

// write replaces both files in place.
func (f files) write(t *testing.T, certPEM, keyPEM []byte) {
	t.Helper()
	if err := os.WriteFile(f.cert, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}

// swap replaces both files by renaming new ones over them, as certbot and
// configuration management tools do.
func (f files) swap(t *testing.T, certPEM, keyPEM []byte) {
	t.Helper()
	for path, data := range map[string][]byte{f.cert: certPEM, f.key: keyPEM} {
		tmp := path + ".new"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
}

// logBuffer collects log output from any goroutine.
type logBuffer = testpeer.Buffer

func newLogger() (*slog.Logger, *logBuffer) {
	logs := new(logBuffer)
	return slog.New(slog.NewTextHandler(logs, nil)), logs
}

// echoServer is an RTMPS stand-in: it completes the handshake and echoes.
type echoServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{} // guarded by mu
}

func startEchoServer(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln, conns: make(map[net.Conn]struct{})}
	s.wg.Go(s.acceptLoop)
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return ln.Addr().String()
}

func (s *echoServer) acceptLoop() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[conn] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, conn)
				s.mu.Unlock()
				conn.Close()
			}()
			conn.SetDeadline(time.Now().Add(ioDeadline))
			io.Copy(conn, conn)
		})
	}
}

// dial completes a TLS handshake with the server, trusting roots.
func dial(addr string, roots *x509.CertPool, maxVersion uint16) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: ioDeadline}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{
		RootCAs:    roots,
		ServerName: "localhost",
		MaxVersion: maxVersion,
	})
	if err != nil {
		return nil, err
	}
	if err := conn.SetDeadline(time.Now().Add(ioDeadline)); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// servedSerial opens a connection and returns the serial the server showed.
func servedSerial(t *testing.T, addr string, roots *x509.CertPool) int64 {
	t.Helper()
	conn, err := dial(addr, roots, 0)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// echo checks that conn still carries data both ways.
func echo(t *testing.T, conn *tls.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(conn, msg+"\n"); err != nil {
		t.Fatalf("write on an open connection: %v", err)
	}
	got, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("read on an open connection: %v", err)
	}
	if got != msg+"\n" {
		t.Fatalf("echoed %q, want %q", got, msg)
	}
}

func roots(pairs ...testpeer.CertPair) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, p := range pairs {
		pool.AddCert(p.Cert)
	}
	return pool
}

func TestReload(t *testing.T) {
	a, b, c := newPair(t, 1001), newPair(t, 2002), newPair(t, 3003)
	pool := roots(a, b, c)
	f := newFiles(t)
	f.write(t, a.CertPEM, a.KeyPEM)
	logger, logs := newLogger()

	r, err := Load(f.cert, f.key, logger)
	if err != nil {
		t.Fatal(err)
	}
	addr := startEchoServer(t, r.TLSConfig())
	if got := servedSerial(t, addr, pool); got != a.Serial() {
		t.Fatalf("served serial %d, want %d", got, a.Serial())
	}
	if r.Serial().Int64() != a.Serial() {
		t.Fatalf("Serial() = %v, want %d", r.Serial(), a.Serial())
	}

	before, err := dial(addr, pool, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	echo(t, before, "opened with A")

	if changed, err := r.Reload(false); changed || err != nil {
		t.Fatalf("Reload(false) on unchanged files = %v, %v; want false, nil", changed, err)
	}

	f.write(t, b.CertPEM, b.KeyPEM)
	if changed, err := r.Reload(false); !changed || err != nil {
		t.Fatalf("Reload(false) after replacing the files = %v, %v; want true, nil", changed, err)
	}
	if got := servedSerial(t, addr, pool); got != b.Serial() {
		t.Fatalf("served serial %d after reload, want %d", got, b.Serial())
	}
	echo(t, before, "still open after the reload")

	broken := []struct {
		name            string
		certPEM, keyPEM []byte
		wantErr         error
	}{
		{"garbage certificate", []byte("not a certificate"), b.KeyPEM, ErrNoCertificate},
		{"garbage key", b.CertPEM, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), ErrNoKey},
		{"empty key", b.CertPEM, nil, ErrNoKey},
		{"key of another certificate", b.CertPEM, c.KeyPEM, ErrMismatch},
		{"certificate of another key", c.CertPEM, b.KeyPEM, ErrMismatch},
		{"missing key file", b.CertPEM, nil, fs.ErrNotExist},
	}
	for _, tt := range broken {
		t.Run(tt.name, func(t *testing.T) {
			f.write(t, tt.certPEM, tt.keyPEM)
			if tt.wantErr == fs.ErrNotExist {
				os.Remove(f.key)
			}
			changed, err := r.Reload(false)
			if changed || !errors.Is(err, tt.wantErr) {
				t.Errorf("Reload(false) = %v, %v; want false, %v", changed, err, tt.wantErr)
			}
			if got := servedSerial(t, addr, pool); got != b.Serial() {
				t.Errorf("served serial %d after a failed reload, want %d still", got, b.Serial())
			}
			if r.Serial().Int64() != b.Serial() {
				t.Errorf("Serial() = %v, want %d", r.Serial(), b.Serial())
			}
		})
	}

	// Back to B: nothing changes for what is served.
	f.write(t, b.CertPEM, b.KeyPEM)
	if changed, err := r.Reload(false); changed || err != nil {
		t.Fatalf("Reload(false) with the served pair back = %v, %v; want false, nil", changed, err)
	}
	if changed, err := r.Reload(true); changed || err != nil {
		t.Fatalf("Reload(true) with unchanged files = %v, %v; want false, nil", changed, err)
	}
	if got := servedSerial(t, addr, pool); got != b.Serial() {
		t.Fatalf("served serial %d, want %d", got, b.Serial())
	}
	echo(t, before, "still open at the end")
	if n := logs.Count("certificate reloaded"); n != 1 {
		t.Errorf("logged %d reloads, want 1", n)
	}
}

func TestReloadLogsRepeatedFailureOnce(t *testing.T) {
	a := newPair(t, 1)
	f := newFiles(t)
	f.write(t, a.CertPEM, a.KeyPEM)
	logger, logs := newLogger()
	r, err := Load(f.cert, f.key, logger)
	if err != nil {
		t.Fatal(err)
	}
	f.write(t, []byte("garbage"), a.KeyPEM)
	for range 3 {
		if _, err := r.Reload(false); err == nil {
			t.Fatal("Reload(false) of a broken pair succeeded")
		}
	}
	if n := logs.Count("cannot load certificate"); n != 1 {
		t.Errorf("logged the same failure %d times, want once", n)
	}
	if _, err := r.Reload(true); err == nil {
		t.Fatal("Reload(true) of a broken pair succeeded")
	}
	if n := logs.Count("cannot load certificate"); n != 2 {
		t.Errorf("logged %d failures in all, want 2: a forced reload logs again", n)
	}
}

func TestLoadWithoutLogger(t *testing.T) {
	a, b := newPair(t, 1), newPair(t, 2)
	f := newFiles(t)
	f.write(t, a.CertPEM, a.KeyPEM)
	r, err := Load(f.cert, f.key, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.write(t, []byte("garbage"), a.KeyPEM)
	if _, err := r.Reload(false); err == nil {
		t.Fatal("Reload(false) of a broken pair succeeded")
	}
	f.write(t, b.CertPEM, b.KeyPEM)
	if changed, err := r.Reload(false); !changed || err != nil {
		t.Fatalf("Reload(false) = %v, %v; want true, nil", changed, err)
	}
}

func TestOldTLSRefused(t *testing.T) {
	a := newPair(t, 7)
	f := newFiles(t)
	f.write(t, a.CertPEM, a.KeyPEM)
	r, err := Load(f.cert, f.key, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	cfg := r.TLSConfig()
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %x, want TLS 1.2", cfg.MinVersion)
	}
	addr := startEchoServer(t, cfg)
	for _, tt := range []struct {
		name    string
		max     uint16
		wantErr bool
	}{
		{"TLS 1.0", tls.VersionTLS10, true},
		{"TLS 1.1", tls.VersionTLS11, true},
		{"TLS 1.2", tls.VersionTLS12, false},
		{"TLS 1.3", tls.VersionTLS13, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := dial(addr, roots(a), tt.max)
			if err == nil {
				conn.Close()
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("handshake error = %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}

// ticketCache is a client session cache that records the tickets it is given.
type ticketCache struct {
	mu      sync.Mutex
	tickets int // guarded by mu
}

func (c *ticketCache) Get(string) (*tls.ClientSessionState, bool) { return nil, false }

func (c *ticketCache) Put(_ string, cs *tls.ClientSessionState) {
	if cs == nil {
		return
	}
	c.mu.Lock()
	c.tickets++
	c.mu.Unlock()
}

func (c *ticketCache) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tickets
}

// TestNoSessionTickets checks that RTMPS issues no session ticket: librtmp
// on GnuTLS drops the connection when a TLS 1.3 ticket follows the handshake.
func TestNoSessionTickets(t *testing.T) {
	a := newPair(t, 8)
	f := newFiles(t)
	f.write(t, a.CertPEM, a.KeyPEM)
	r, err := Load(f.cert, f.key, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := startEchoServer(t, r.TLSConfig())
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			cache := &ticketCache{}
			d := &net.Dialer{Timeout: ioDeadline}
			conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{
				RootCAs:            roots(a),
				ServerName:         "localhost",
				MinVersion:         version,
				MaxVersion:         version,
				ClientSessionCache: cache,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := conn.SetDeadline(time.Now().Add(ioDeadline)); err != nil {
				t.Fatal(err)
			}
			// A TLS 1.3 ticket arrives after the handshake: reading the echo
			// processes it.
			echo(t, conn, "after the handshake")
			if n := cache.count(); n != 0 {
				t.Fatalf("server issued %d session tickets, want none", n)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	a, b := newPair(t, 1), newPair(t, 2)
	tests := []struct {
		name            string
		certPEM, keyPEM []byte
		noFiles         bool
		wantErr         error
	}{
		{name: "mismatch", certPEM: a.CertPEM, keyPEM: b.KeyPEM, wantErr: ErrMismatch},
		{name: "garbage certificate", certPEM: []byte("x"), keyPEM: a.KeyPEM, wantErr: ErrNoCertificate},
		{name: "key in the certificate file", certPEM: a.KeyPEM, keyPEM: a.KeyPEM, wantErr: ErrNoCertificate},
		{name: "certificate in the key file", certPEM: a.CertPEM, keyPEM: a.CertPEM, wantErr: ErrNoKey},
		{name: "missing files", noFiles: true, wantErr: fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFiles(t)
			if !tt.noFiles {
				f.write(t, tt.certPEM, tt.keyPEM)
			}
			r, err := Load(f.cert, f.key, slog.New(slog.DiscardHandler))
			if !errors.Is(err, tt.wantErr) || r != nil {
				t.Errorf("Load = %v, %v; want nil, %v", r, err, tt.wantErr)
			}
		})
	}
	if _, err := Load("", "key.pem", nil); !errors.Is(err, ErrNoFiles) {
		t.Errorf("Load without a certificate file = %v, want %v", err, ErrNoFiles)
	}
}

func TestSetFiles(t *testing.T) {
	a, d, e := newPair(t, 1), newPair(t, 4), newPair(t, 5)
	pool := roots(a, d, e)
	first, second, third := newFiles(t), newFiles(t), newFiles(t)
	first.write(t, a.CertPEM, a.KeyPEM)
	second.write(t, d.CertPEM, d.KeyPEM)
	third.write(t, e.CertPEM, []byte("not yet"))

	r, err := Load(first.cert, first.key, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	addr := startEchoServer(t, r.TLSConfig())

	if changed, err := r.SetFiles(second.cert, second.key); !changed || err != nil {
		t.Fatalf("SetFiles(second) = %v, %v; want true, nil", changed, err)
	}
	if got := servedSerial(t, addr, pool); got != d.Serial() {
		t.Fatalf("served serial %d, want %d", got, d.Serial())
	}
	if changed, err := r.SetFiles(second.cert, second.key); changed || err != nil {
		t.Fatalf("SetFiles with the same files = %v, %v; want false, nil", changed, err)
	}

	if changed, err := r.SetFiles(third.cert, third.key); changed || !errors.Is(err, ErrNoKey) {
		t.Fatalf("SetFiles(broken) = %v, %v; want false, %v", changed, err, ErrNoKey)
	}
	if got := servedSerial(t, addr, pool); got != d.Serial() {
		t.Fatalf("served serial %d after a failed switch, want %d", got, d.Serial())
	}

	// The new names stay: once their pair is complete, a reload serves it.
	third.write(t, e.CertPEM, e.KeyPEM)
	if changed, err := r.Reload(false); !changed || err != nil {
		t.Fatalf("Reload(false) = %v, %v; want true, nil", changed, err)
	}
	if got := servedSerial(t, addr, pool); got != e.Serial() {
		t.Fatalf("served serial %d, want %d", got, e.Serial())
	}

	if _, err := r.SetFiles("", ""); !errors.Is(err, ErrNoFiles) {
		t.Errorf("SetFiles without names = %v, want %v", err, ErrNoFiles)
	}
}

func TestWatch(t *testing.T) {
	a, b := newPair(t, 10), newPair(t, 20)
	f := newFiles(t)
	f.write(t, a.CertPEM, a.KeyPEM)
	r, err := Load(f.cert, f.key, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	addr := startEchoServer(t, r.TLSConfig())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Watch(ctx, 10*time.Millisecond)
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(ioDeadline):
			t.Error("Watch did not return after its context ended")
		}
	}()

	f.swap(t, b.CertPEM, b.KeyPEM)
	waitFor(t, func() bool { return r.Serial().Int64() == b.Serial() })
	if got := servedSerial(t, addr, roots(a, b)); got != b.Serial() {
		t.Fatalf("served serial %d, want %d", got, b.Serial())
	}
}

func TestWatchOff(t *testing.T) {
	a := newPair(t, 1)
	f := newFiles(t)
	f.write(t, a.CertPEM, a.KeyPEM)
	r, err := Load(f.cert, f.key, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Watch(context.Background(), 0)
	}()
	select {
	case <-done:
	case <-time.After(ioDeadline):
		t.Fatal("Watch with interval 0 did not return")
	}
}

// TestHandshakesDuringReloads races handshakes against reloads.
func TestHandshakesDuringReloads(t *testing.T) {
	a, b := newPair(t, 100), newPair(t, 200)
	pool := roots(a, b)
	f := newFiles(t)
	f.write(t, a.CertPEM, a.KeyPEM)
	r, err := Load(f.cert, f.key, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	addr := startEchoServer(t, r.TLSConfig())

	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 10 {
				conn, err := dial(addr, pool, 0)
				if err != nil {
					errs <- err
					return
				}
				serial := conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
				conn.Close()
				if serial != a.Serial() && serial != b.Serial() {
					errs <- fmt.Errorf("served serial %d", serial)
					return
				}
			}
		})
	}
	for i := range 20 {
		p := a
		if i%2 == 0 {
			p = b
		}
		f.swap(t, p.CertPEM, p.KeyPEM)
		if _, err := r.Reload(false); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// waitFor waits until cond holds, failing the test after ioDeadline.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.After(ioDeadline)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("condition not met within %v", ioDeadline)
		case <-tick.C:
		}
	}
}
