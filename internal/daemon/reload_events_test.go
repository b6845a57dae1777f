package daemon

// Process-level tests of stop events across reloads: the built server, its
// --config file rewritten and SIGHUP sent, and two callback servers that
// each verify every token against their own secret.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/rtmp-server/rtmp-server/internal/callback"
	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/config"
	"github.com/rtmp-server/rtmp-server/internal/server"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// Secrets of the two callback servers of the reload tests.
const (
	reloadSecretA = "reload-secret-A"
	reloadSecretB = "reload-secret-B"
)

func TestReloadEvents(t *testing.T) {
	bin := buildEventsServer(t)
	tests := []struct {
		name string
		run  func(t *testing.T, bin string)
	}{
		{"PendingStopsUseSettingsOfLaterReload", testStopsFollowReload},
		{"SIGHUPChurnLosesNoStop", testReloadChurn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, bin)
		})
	}
}

// reloadCallback starts a callback server checking tokens signed with
// secret. It approves every start; it answers stops 503 until acceptStops
// is set.
func reloadCallback(t *testing.T, secret, prefix string, acceptStops *atomic.Bool) *testpeer.Callback {
	t.Helper()
	var n atomic.Int64
	return testpeer.StartCallback(t, testpeer.CallbackWant{
		Secret:        secret,
		Subject:       evSubject,
		RTMPHost:      evRTMPHost,
		ClientIP:      "127.0.0.1",
		TokenLifetime: callback.TokenLifetime,
	}, func(r testpeer.CallbackRequest) testpeer.CallbackReply {
		if r.Event == callback.EventStart {
			return testpeer.CallbackReply{StreamID: fmt.Sprintf("%s-%s-%d", prefix, r.Channel, n.Add(1))}
		}
		if !acceptStops.Load() {
			return testpeer.CallbackReply{Status: http.StatusServiceUnavailable}
		}
		return testpeer.CallbackReply{}
	})
}

// callbackLines are the --config lines that send events to cb signed with
// secret; nil turns callbacks off.
func callbackLines(cb *testpeer.Callback, secret string) []string {
	if cb == nil {
		return nil
	}
	return []string{"CALLBACK_URL=" + cb.URL(), "JWT_SECRET=" + secret}
}

// reloadWith rewrites the server's --config file as the shared settings
// plus lines, sends SIGHUP and waits for the n-th "configuration reloaded".
func (s *evServer) reloadWith(t *testing.T, n int, lines []string) {
	t.Helper()
	content := strings.Join(append(slices.Clone(evBaseFile), lines...), "\n") + "\n"
	if err := os.WriteFile(s.cfgPath, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	s.proc.Signal(t, syscall.SIGHUP)
	s.waitLog(t, "the reload", n, nil, msgIs("configuration reloaded"))
}

// approvedIDs returns the stream ids of the approved starts in reqs.
func approvedIDs(reqs []testpeer.CallbackRequest) []string {
	var ids []string
	for _, r := range evEvents(reqs, callback.EventStart, "") {
		if evAccepted(r) && r.Reply.StreamID != "" {
			ids = append(ids, r.Reply.StreamID)
		}
	}
	return ids
}

// deliveredIDs returns the stream ids of the stops answered 200 in reqs.
func deliveredIDs(reqs []testpeer.CallbackRequest) map[string]bool {
	ids := make(map[string]bool)
	for _, r := range evDelivered(reqs, "") {
		ids[r.StreamID] = true
	}
	return ids
}

// testStopsFollowReload: stops fail under callback server A and its
// secret; a reload turns callbacks off, another turns them on with server
// B and another secret. Every pending stop then reaches B, signed with B's
// secret (B refuses anything else and fails the test).
func testStopsFollowReload(t *testing.T, bin string) {
	var acceptA, acceptB atomic.Bool
	acceptB.Store(true)
	cbA := reloadCallback(t, reloadSecretA, "a", &acceptA)
	cbB := reloadCallback(t, reloadSecretB, "b", &acceptB)
	srv := startEvServer(t, bin, evSettings{file: callbackLines(cbA, reloadSecretA)})
	cbA.ExpectRTMPPort(srv.port)
	cbB.ExpectRTMPPort(srv.port)

	channels := []string{"reload_a", "reload_b", "reload_c"}
	for _, ch := range channels {
		c, st, err := evPublish(t, srv.addr, ch, "k")
		if c != nil {
			c.Close() // the publication ends: its stop is due
		}
		if err != nil || st.Code != publishStart {
			t.Fatalf("publish %s: status %q, error %v", ch, st.Code, err)
		}
	}
	ids := approvedIDs(cbA.Requests())
	if len(ids) != len(channels) {
		t.Fatalf("want %d approved starts at A; events:\n%s", len(channels), testpeer.FormatCallbackRequests(cbA.Requests()))
	}
	cbA.WaitFor(t, "a refused stop for every publication", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		refused := make(map[string]bool)
		for _, r := range evEvents(reqs, callback.EventStop, "") {
			refused[r.StreamID] = true
		}
		return len(refused) == len(ids)
	})

	srv.reloadWith(t, 1, nil)
	srv.reloadWith(t, 2, callbackLines(cbB, reloadSecretB))

	cbB.WaitFor(t, "every pending stop at B", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		return len(deliveredIDs(reqs)) == len(ids)
	})
	srv.terminate(t)

	got := deliveredIDs(cbB.Requests())
	for _, id := range ids {
		if !got[id] {
			t.Errorf("no stop at B for stream id %q", id)
		}
	}
	checkEvStops(t, append(cbA.Requests(), cbB.Requests()...))
}

// testReloadChurn: publishers come and go while SIGHUP cycles the
// callbacks between server A, off and server B, with both refusing stops.
// Then A goes away for good, stops are accepted, and a last reload points
// at B: every approved start, wherever it was approved, gets exactly one
// stop.
func testReloadChurn(t *testing.T, bin string) {
	const reloads = 24
	var acceptA, acceptB atomic.Bool
	cbA := reloadCallback(t, reloadSecretA, "a", &acceptA)
	cbB := reloadCallback(t, reloadSecretB, "b", &acceptB)
	srv := startEvServer(t, bin, evSettings{file: callbackLines(cbA, reloadSecretA)})
	cbA.ExpectRTMPPort(srv.port)
	cbB.ExpectRTMPPort(srv.port)

	ctx, stopChurn := context.WithCancel(context.Background())
	defer stopChurn()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	var published atomic.Int64
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch := fmt.Sprintf("churn_%d", i)
			for ctx.Err() == nil {
				c, st, err := evPublish(t, srv.addr, ch, "k")
				if c != nil {
					c.Close()
				}
				switch {
				case err == nil && st.Code == publishStart:
					published.Add(1)
				case errors.Is(err, client.ErrStatus) && st.Code == publishBadName:
					// Refused: the callbacks were being switched.
				default:
					errs <- fmt.Errorf("publish %s: status %q, error %v", ch, st.Code, err)
					return
				}
			}
		}()
	}

	phases := [][]string{nil, callbackLines(cbB, reloadSecretB), callbackLines(cbA, reloadSecretA)}
	for n := 1; n <= reloads; n++ {
		srv.reloadWith(t, n, phases[n%len(phases)])
	}
	stopChurn()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	if published.Load() == 0 {
		t.Fatal("no publish went through during the churn")
	}

	cbA.Stop()
	acceptB.Store(true)
	srv.reloadWith(t, reloads+1, callbackLines(cbB, reloadSecretB))
	approved := func() []string { return append(approvedIDs(cbA.Requests()), approvedIDs(cbB.Requests())...) }
	cbB.WaitFor(t, "a stop at B for every approved start", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		got := deliveredIDs(reqs)
		for _, id := range approved() {
			if !got[id] {
				return false
			}
		}
		return true
	})
	srv.terminate(t)
	checkEvStops(t, append(cbA.Requests(), cbB.Requests()...))
}

// TestCallbacksKeepOneClient: however many reloads turn callbacks off and
// on, there is one callback client, so no stop is left behind in a
// superseded one.
func TestCallbacksKeepOneClient(t *testing.T) {
	on := config.Config{CallbackURL: "http://127.0.0.1:9/events", JWTSecret: config.Secret("s"), RTMPHost: "h", RTMPPort: 1935}
	off := on
	off.CallbackURL = ""
	srv, err := server.New(server.DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cbs := callbacks{}
	if err := cbs.apply(on, srv); err != nil {
		t.Fatal(err)
	}
	first := cbs.client
	for i := range 100 {
		cfg := on
		if i%2 == 0 {
			cfg = off
		}
		cfg.JWTSecret = config.Secret(fmt.Sprintf("secret-%d", i))
		if err := cbs.apply(cfg, srv); err != nil {
			t.Fatal(err)
		}
		if cbs.client != first {
			t.Fatalf("reload %d made a new callback client", i+1)
		}
	}
	if err := cbs.close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
