package callback

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// recorder is a Reporter that keeps what it hears.
type recorder struct {
	mu       sync.Mutex
	requests []string // guarded by mu: "event outcome"
	lost     []string // guarded by mu: reasons
}

func (r *recorder) Request(event string, err error, took time.Duration) {
	outcome := "accepted"
	for _, e := range []error{ErrDenied, ErrRejected, ErrNoStreamID, ErrTimeout, ErrUnreachable, ErrDisabled, context.Canceled} {
		if errors.Is(err, e) {
			outcome = e.Error()
			break
		}
	}
	if err != nil && outcome == "accepted" {
		outcome = "other: " + err.Error()
	}
	if took < 0 {
		outcome += " (negative duration)"
	}
	r.mu.Lock()
	r.requests = append(r.requests, event+" "+outcome)
	r.mu.Unlock()
}

func (r *recorder) StopLost(reason string) {
	r.mu.Lock()
	r.lost = append(r.lost, reason)
	r.mu.Unlock()
}

func (r *recorder) seen() ([]string, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.requests), slices.Clone(r.lost)
}

// TestReporterHearsEveryRequest: against a real callback server, the
// reporter hears each start with its outcome, each stop attempt
// (refused ones, then the accepted one), and nothing is reported lost.
func TestReporterHearsEveryRequest(t *testing.T) {
	srv := newCallbackServer(t, func(w http.ResponseWriter, r *http.Request, ev received, n int) {
		switch {
		case ev.event() == EventStart && ev.str("channel") == "denied":
			w.WriteHeader(http.StatusForbidden)
		case ev.event() == EventStop && n <= 2:
			w.WriteHeader(http.StatusInternalServerError)
		default:
			approve(w, r, ev, n)
		}
	})
	c, _ := newTestClient(t, srv.url(), waitLimit)
	rec := &recorder{}
	c.SetReporter(rec)

	if _, err := c.Start(context.Background(), testEvent("ok")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(context.Background(), testEvent("denied")); !errors.Is(err, ErrDenied) {
		t.Fatalf("Start = %v, want ErrDenied", err)
	}
	c.Stop(stopEvent("ok", "sid-ok"))
	waitFor(t, "the stop delivered", func() bool { return c.Pending() == 0 })

	requests, lost := rec.seen()
	want := []string{
		"start accepted", "start " + ErrDenied.Error(),
		"stop " + ErrRejected.Error(), "stop " + ErrRejected.Error(), "stop accepted",
	}
	if !slices.Equal(requests, want) {
		t.Errorf("reported %q, want %q", requests, want)
	}
	if len(lost) != 0 {
		t.Errorf("reported lost %q, want none", lost)
	}
}

// TestReporterHearsLostStops: a stop refused until its retry window ends,
// one abandoned by Close, one after Close and one past the queue's bound
// are each reported lost with their reason, and their attempts as
// requests.
func TestReporterHearsLostStops(t *testing.T) {
	t.Run("retry window", func(t *testing.T) {
		srv := newCallbackServer(t, func(w http.ResponseWriter, _ *http.Request, _ received, _ int) {
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		c, _ := newTestClient(t, srv.url(), waitLimit)
		c.retryWindow = 30 * time.Millisecond
		rec := &recorder{}
		c.SetReporter(rec)
		c.Stop(stopEvent("ch", "sid-1"))
		waitFor(t, "the stop given up", func() bool { return c.Pending() == 0 })
		requests, lost := rec.seen()
		if !slices.Equal(lost, []string{LostRetryWindow}) {
			t.Errorf("lost %q, want [%s]", lost, LostRetryWindow)
		}
		if len(requests) == 0 || len(requests) != len(srv.seen(EventStop)) {
			t.Errorf("%d attempts reported, the server saw %d", len(requests), len(srv.seen(EventStop)))
		}
		for _, r := range requests {
			if r != "stop "+ErrRejected.Error() {
				t.Errorf("attempt reported as %q", r)
			}
		}
	})

	t.Run("unreachable, then queue full, then closed", func(t *testing.T) {
		// Nothing listens: every attempt fails at once, and the stops
		// wait a minute for their next one.
		c, _ := newTestClient(t, "http://"+testpeer.RefusingAddr(t)+"/rtmp/event", waitLimit)
		c.retryInitial, c.retryMax, c.retryWindow = time.Minute, time.Minute, time.Hour
		c.maxPending = 2
		rec := &recorder{}
		c.SetReporter(rec)
		for i := range 3 {
			c.Stop(stopEvent("ch", fmt.Sprint("sid-", i)))
		}
		waitFor(t, "two attempts", func() bool { r, _ := rec.seen(); return len(r) == 2 })
		if _, lost := rec.seen(); !slices.Equal(lost, []string{LostQueueFull}) {
			t.Errorf("lost %q, want [%s]", lost, LostQueueFull)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := c.Close(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Close = %v, want context.Canceled", err)
		}
		c.Stop(stopEvent("ch", "sid-late"))
		requests, lost := rec.seen()
		if want := []string{LostQueueFull, LostClosed, LostClosed, LostClosed}; !slices.Equal(lost, want) {
			t.Errorf("lost %q, want %q", lost, want)
		}
		for _, r := range requests {
			if r != "stop "+ErrUnreachable.Error() {
				t.Errorf("attempt reported as %q, want unreachable", r)
			}
		}
	})
}
