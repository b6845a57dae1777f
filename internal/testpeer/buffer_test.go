package testpeer

import (
	"fmt"
	"testing"
	"time"
)

func TestBufferChanged(t *testing.T) {
	var b Buffer
	changed := b.Changed()
	if again := b.Changed(); again != changed {
		t.Fatal("two calls without a Write in between return different channels")
	}
	select {
	case <-changed:
		t.Fatal("closed before any Write")
	default:
	}
	if _, err := b.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("not closed by a Write")
	}
	next := b.Changed()
	select {
	case <-next:
		t.Fatal("the channel after a Write is already closed")
	default:
	}

	// A writer in another goroutine wakes a reader that waits for a count.
	go func() {
		for i := range 3 {
			fmt.Fprintf(&b, "line %d\n", i)
		}
	}()
	deadline := time.After(10 * time.Second)
	for {
		ch := b.Changed()
		if b.Count("line") >= 3 {
			break
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("three lines not seen: %q", b.String())
		}
	}
	if got := b.String(); got != "one\nline 0\nline 1\nline 2\n" {
		t.Fatalf("String %q", got)
	}
}
