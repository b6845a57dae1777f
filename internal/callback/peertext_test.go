package callback

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// TestMalformedAnswerErrorBounded answers with a status line of 60 000
// control bytes, which net/http quotes in its error: the error Start
// returns (and the server logs) stays short and printable.
func TestMalformedAnswerErrorBounded(t *testing.T) {
	ln := testpeer.Listen(t)
	served := make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer nc.Close()
		if _, err := http.ReadRequest(bufio.NewReader(nc)); err != nil {
			served <- err
			return
		}
		_, err = nc.Write([]byte("HTTP/1.1 " + strings.Repeat("\x01", 60000) + "\r\n\r\n"))
		served <- err
	}()
	c, _ := newTestClient(t, "http://"+ln.Addr().String()+"/", waitLimit)
	_, err := c.Start(context.Background(), testEvent("ch"))
	if serr := <-served; serr != nil {
		t.Fatalf("raw callback server: %v", serr)
	}
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Start error = %.200v, want ErrUnreachable", err)
	}
	if text := err.Error(); len(text) > maxErrorText+64 || strings.Contains(text, "\x01") {
		t.Errorf("error of %d bytes: %.300q", len(text), text)
	}
}

// TestLongStreamIDLogBounded approves a publish with a stream id of 8000
// bytes: the start and stop log lines carry it clipped, and the stop event
// still carries all of it.
func TestLongStreamIDLogBounded(t *testing.T) {
	long := strings.Repeat("s", 8000)
	srv := newCallbackServer(t, func(w http.ResponseWriter, _ *http.Request, ev received, _ int) {
		if ev.event() == EventStart {
			w.Header().Set(StreamIDHeader, long)
		}
		w.WriteHeader(http.StatusOK)
	})
	c, logs := newTestClient(t, srv.url(), waitLimit)
	id, err := c.Start(context.Background(), testEvent("ch"))
	if err != nil || id != long {
		t.Fatalf("Start = %d bytes, %v; want the %d-byte stream id", len(id), err, len(long))
	}
	c.Stop(stopEvent("ch", id))
	waitFor(t, "the stop delivered", func() bool { return strings.Contains(logs.String(), "callback stop delivered") })
	if stops := srv.seen(EventStop); len(stops) != 1 || stops[0].str("stream_id") != long {
		t.Errorf("the stop event does not carry the whole stream id")
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if len(line) > 1024 {
			t.Errorf("a log line of %d bytes: %.200s...", len(line), line)
		}
	}
}
