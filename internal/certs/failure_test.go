package certs

import (
	"context"
	"errors"
	"io/fs"
	"sync"
	"testing"
	"time"
)

// failures counts what OnFailure hears.
type failures struct {
	mu   sync.Mutex
	errs []error // guarded by mu
}

func (f *failures) add(err error) {
	f.mu.Lock()
	f.errs = append(f.errs, err)
	f.mu.Unlock()
}

func (f *failures) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.errs)
}

// TestOnFailureHearsEveryFailedReload: a broken file written while the
// pair is served is heard on every forced and unforced Reload (repeats
// included, though the log shows them once), on SetFiles to missing files,
// and on every tick of Watch; successful reloads are not heard, and
// NotAfter follows the pair being served.
func TestOnFailureHearsEveryFailedReload(t *testing.T) {
	a, b := newPair(t, 1), newPair(t, 2)
	f := newFiles(t)
	f.write(t, a.CertPEM, a.KeyPEM)
	logger, logs := newLogger()
	r, err := Load(f.cert, f.key, logger)
	if err != nil {
		t.Fatal(err)
	}
	var heard failures
	r.OnFailure(heard.add)
	if !r.NotAfter().Equal(a.Cert.NotAfter) {
		t.Errorf("NotAfter %v, want %v", r.NotAfter(), a.Cert.NotAfter)
	}

	f.write(t, []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"), a.KeyPEM)
	for i, force := range []bool{false, false, true} {
		if _, err := r.Reload(force); err == nil {
			t.Fatalf("Reload(%v) of a broken file succeeded", force)
		}
		if got := heard.count(); got != i+1 {
			t.Fatalf("after %d failed reloads, %d heard", i+1, got)
		}
	}
	if n := logs.Count("cannot load certificate"); n != 2 {
		t.Errorf("%d failures logged, want 2 (the repeated unforced one is not)", n)
	}
	if _, err := r.SetFiles(f.cert+".missing", f.key); err == nil {
		t.Fatal("SetFiles to a missing file succeeded")
	}
	if got := heard.count(); got != 4 {
		t.Fatalf("after SetFiles to a missing file, %d heard, want 4", got)
	}
	if _, err := r.SetFiles(f.cert, f.key); err == nil {
		t.Fatal("SetFiles back to the broken file succeeded")
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Watch(ctx, 5*time.Millisecond)
	}()
	defer func() {
		cancel()
		<-done
	}()
	waitFor(t, func() bool { return heard.count() >= 8 })

	f.swap(t, b.CertPEM, b.KeyPEM)
	waitFor(t, func() bool { return r.Serial().Int64() == b.Serial() })
	settled := heard.count()
	if _, err := r.Reload(true); err != nil {
		t.Fatal(err)
	}
	if got := heard.count(); got != settled {
		t.Errorf("a successful reload was heard as a failure (%d, then %d)", settled, got)
	}
	if !r.NotAfter().Equal(b.Cert.NotAfter) {
		t.Errorf("NotAfter %v after the renewal, want %v", r.NotAfter(), b.Cert.NotAfter)
	}
	heard.mu.Lock()
	defer heard.mu.Unlock()
	for _, err := range heard.errs {
		// The broken and the missing file; and, while the watcher runs, the
		// moment between the renewal's two renames (a new certificate
		// beside the old key), which a real renewal has too.
		if !errors.Is(err, ErrNoCertificate) && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, ErrMismatch) {
			t.Errorf("heard %v, want the reload's error", err)
		}
	}
}
