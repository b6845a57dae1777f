package testpeer

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"
)

// TestSelfSignedVerifies serves the pair over a real TLS handshake and
// checks that a client trusting Roots accepts it under every name the pair
// promises, that one trusting nothing refuses it, and that the files
// WriteTemp writes load as the same pair.
func TestSelfSignedVerifies(t *testing.T) {
	pair := SelfSigned(t, 4242)
	if pair.Serial() != 4242 {
		t.Fatalf("serial %d, want 4242", pair.Serial())
	}
	certFile, keyFile := pair.WriteTemp(t)
	loaded, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatalf("written files do not load: %v", err)
	}
	ln := Listen(t)
	srv := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{loaded}})
	served := make(chan error, 1)
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				served <- err
				return
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			// The handshake's outcome is the client's to check.
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	dial := func(name string, cfg *tls.Config) (*tls.Conn, error) {
		cfg.ServerName = name
		return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), cfg)
	}
	for _, name := range []string{"localhost", "127.0.0.1"} {
		c, err := dial(name, &tls.Config{RootCAs: pair.Roots()})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := c.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); got != 4242 {
			t.Errorf("%s: served serial %d", name, got)
		}
		c.Close()
	}
	if c, err := dial("localhost", &tls.Config{RootCAs: SelfSigned(t, 1).Roots()}); err == nil {
		c.Close()
		t.Error("a pool trusting another pair accepted this one")
	}
	if c, err := dial("example.com", &tls.Config{RootCAs: pair.Roots()}); err == nil {
		c.Close()
		t.Error("accepted for a name the certificate does not carry")
	}
	if err := pair.Cert.VerifyHostname("::1"); err != nil {
		t.Errorf("::1: %v", err)
	}
	ln.Close()
	if err := <-served; !errors.Is(err, net.ErrClosed) {
		t.Errorf("accept loop: %v", err)
	}
}

func TestSelfSignedRefusesBadSerial(t *testing.T) {
	for _, serial := range []int64{0, -1} {
		if _, err := newSelfSigned(serial, time.Now()); err == nil {
			t.Errorf("serial %d accepted", serial)
		}
	}
}
