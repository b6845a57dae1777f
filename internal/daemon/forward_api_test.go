package daemon

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/admin"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// TestForwardStreamsAPI runs two servers as processes: ffmpeg publishes to
// the first, which forwards to the second by FORWARD_URLS. The first's
// GET /v1/streams/{channel} shows the forward, live with its bytes
// growing, and not among the players; when the second is killed, the
// forward shows retrying with the error, then its reconnects counted, the
// error kept while it connects again. No answer, nor the status command's
// table, shows the stream key.
func TestForwardStreamsAPI(t *testing.T) {
	t.Parallel()
	testpeer.Need(t, "ffmpeg")
	bin := buildEventsServer(t)
	const key = "api-secret-key"
	target := startEvServer(t, bin, evSettings{})
	origin := startEvServer(t, bin, evSettings{env: []string{
		"FORWARD_URLS=rtmp://" + target.addr + "/{channel}/{key}",
		"ADMIN_ADDRESS=127.0.0.1:0",
	}})
	adminAddr := origin.waitLog(t, "the admin listener", 1, nil, msgIs("listening", "proto", "http"))[0].fields["addr"]
	streamURL := "http://" + adminAddr + "/v1/streams/fwdapi"
	wantTarget := "rtmp://" + target.addr + "/fwdapi/***"

	// get reads the stream's answer, failing on one that shows the key.
	get := func() (admin.Stream, bool) {
		code, body := httpGet(t, streamURL, "")
		if strings.Contains(body, key) {
			t.Fatalf("the streams API shows the stream key:\n%s", body)
		}
		if code != http.StatusOK {
			return admin.Stream{}, false
		}
		var st admin.Stream
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("GET %s: %v\n%s", streamURL, err, body)
		}
		return st, true
	}
	// waitForward waits until the stream has one forward that ok accepts.
	waitForward := func(what string, ok func(admin.Forward) bool) (admin.Stream, admin.Forward) {
		t.Helper()
		var st admin.Stream
		var f admin.Forward
		testpeer.WaitFor(t, what, 20*time.Second, func() bool {
			var found bool
			if st, found = get(); !found || len(st.Forwards) != 1 {
				return false
			}
			f = st.Forwards[0]
			return ok(f)
		})
		return st, f
	}

	pub := publishEvFFmpeg(t, origin.url("fwdapi", key))
	st, first := waitForward("the forward live with bytes sent", func(f admin.Forward) bool {
		return f.State == "live" && f.BytesSent > 0
	})
	if first.Target != wantTarget || first.Reconnects != 0 || first.LastError != "" || first.Since.IsZero() {
		t.Errorf("live forward = %+v, want target %s, no reconnects, no error, a since", first, wantTarget)
	}
	for _, p := range st.Players {
		if p.Session == 0 {
			t.Errorf("the forward is listed among the players: %+v", st.Players)
		}
	}
	waitForward("the forward's bytes growing", func(f admin.Forward) bool {
		return f.State == "live" && f.BytesSent > first.BytesSent
	})

	// The whole list shows it too.
	_, body := httpGet(t, "http://"+adminAddr+"/v1/streams", "")
	if !strings.Contains(body, `"target": "`+wantTarget+`"`) || strings.Contains(body, key) {
		t.Errorf("GET /v1/streams: want the forward to %s and no key:\n%s", wantTarget, body)
	}

	// So does the status command, with the forwards by state.
	cmd := exec.Command(bin, "status", "--config", origin.cfgPath, "--admin", adminAddr)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "FORWARDS") || !strings.Contains(string(out), "1 live") || strings.Contains(string(out), key) {
		t.Errorf("rtmp-server status (%v): want a FORWARDS column with 1 live and no key:\n%s", err, out)
	}

	target.proc.Kill()
	_, failed := waitForward("the forward retrying", func(f admin.Forward) bool { return f.State == "retrying" })
	if failed.LastError == "" || failed.BytesSent < first.BytesSent {
		t.Errorf("retrying forward = %+v, want an error and the bytes kept", failed)
	}
	waitForward("the reconnect counted", func(f admin.Forward) bool {
		return f.Reconnects >= 1 && f.State != "live" && f.LastError != ""
	})
	if pub.Exited() {
		t.Fatalf("the publisher stopped: %v\n%s", pub.Err(), pub.Stderr.String())
	}
}
