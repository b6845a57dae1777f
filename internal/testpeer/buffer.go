package testpeer

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer collects output written from several goroutines (a process's
// stdout, a logger), for tests to read while it grows.
type Buffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // guarded by mu: closed by the next Write; nil until asked for
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Count returns how many times s occurs in what was written so far.
func (b *Buffer) Count(s string) int {
	return strings.Count(b.String(), s)
}

// Changed returns a channel that the next Write closes: a reader that found
// too little in String waits on it for more, without polling. Take the
// channel before reading String, so that a Write in between is not missed.
func (b *Buffer) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed == nil {
		b.changed = make(chan struct{})
	}
	return b.changed
}
