package testpeer

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var callbackTestWant = CallbackWant{
	Secret:        "test-secret",
	Subject:       "rtmp_event",
	RTMPHost:      "rtmp.example",
	ClientIP:      "127.0.0.1",
	TokenLifetime: 2 * time.Minute,
}

func callbackTestClaims(event string) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub":       "rtmp_event",
		"event":     event,
		"channel":   "live",
		"key":       "k",
		"client_ip": "127.0.0.1",
		"rtmp_host": "rtmp.example",
		"rtmp_port": 1935,
		"exp":       jwt.NewNumericDate(time.Now().Add(2 * time.Minute)),
	}
	if event == "stop" {
		c["stream_id"] = "sid-1"
	}
	return c
}

func signCallbackTest(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCallbackVerify checks that the callback server accepts the tokens
// the event contract describes and refuses anything else.
func TestCallbackVerify(t *testing.T) {
	secret := []byte(callbackTestWant.Secret)
	with := func(event string, change func(jwt.MapClaims)) string {
		c := callbackTestClaims(event)
		change(c)
		return signCallbackTest(t, jwt.SigningMethodHS256, secret, c)
	}
	tests := []struct {
		name    string
		method  string
		path    string
		token   string
		wantErr string // "" for accepted
	}{
		{name: "start", token: with("start", func(jwt.MapClaims) {})},
		{name: "stop", token: with("stop", func(jwt.MapClaims) {})},
		{name: "no header", token: "", wantErr: "no rtmp-event header"},
		{name: "GET", method: http.MethodGet, token: with("start", func(jwt.MapClaims) {}), wantErr: "want POST"},
		{name: "other path", path: "/other", token: with("start", func(jwt.MapClaims) {}), wantErr: "want POST /rtmp/events"},
		{name: "wrong secret", token: signCallbackTest(t, jwt.SigningMethodHS256, []byte("other"), callbackTestClaims("start")), wantErr: "signature is invalid"},
		{name: "HS512", token: signCallbackTest(t, jwt.SigningMethodHS512, secret, callbackTestClaims("start")), wantErr: "signing method HS512 is invalid"},
		{name: "alg none", token: signCallbackTest(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, callbackTestClaims("start")), wantErr: "signing method none is invalid"},
		{name: "expired", token: with("start", func(c jwt.MapClaims) { c["exp"] = jwt.NewNumericDate(time.Now().Add(-time.Minute)) }), wantErr: "token is expired"},
		{name: "no exp", token: with("start", func(c jwt.MapClaims) { delete(c, "exp") }), wantErr: "exp claim is required"},
		{name: "exp too far", token: with("start", func(c jwt.MapClaims) { c["exp"] = jwt.NewNumericDate(time.Now().Add(time.Hour)) }), wantErr: "more than 2m0s away"},
		{name: "wrong subject", token: with("start", func(c jwt.MapClaims) { c["sub"] = "other" }), wantErr: "token has invalid subject"},
		{name: "unknown event", token: with("start", func(c jwt.MapClaims) { c["event"] = "pause" }), wantErr: `event "pause"`},
		{name: "start with stream id", token: with("start", func(c jwt.MapClaims) { c["stream_id"] = "x" }), wantErr: "start event carries a stream_id"},
		{name: "stop without stream id", token: with("stop", func(c jwt.MapClaims) { delete(c, "stream_id") }), wantErr: "claim stream_id is <nil>"},
		{name: "stop with empty stream id", token: with("stop", func(c jwt.MapClaims) { c["stream_id"] = "" }), wantErr: "empty stream_id"},
		{name: "extra claim", token: with("start", func(c jwt.MapClaims) { c["iat"] = 1 }), wantErr: "unexpected claim iat"},
		{name: "empty channel", token: with("start", func(c jwt.MapClaims) { c["channel"] = "" }), wantErr: "empty channel"},
		{name: "empty key", token: with("start", func(c jwt.MapClaims) { c["key"] = "" }), wantErr: "empty key"},
		{name: "key not a string", token: with("start", func(c jwt.MapClaims) { c["key"] = 7 }), wantErr: "claim key is float64 7"},
		{name: "other client ip", token: with("start", func(c jwt.MapClaims) { c["client_ip"] = "10.0.0.1" }), wantErr: `client_ip "10.0.0.1", want "127.0.0.1"`},
		{name: "bad client ip", token: with("start", func(c jwt.MapClaims) { c["client_ip"] = "localhost" }), wantErr: "not an IP address"},
		{name: "other host", token: with("start", func(c jwt.MapClaims) { c["rtmp_host"] = "x" }), wantErr: `rtmp_host "x"`},
		{name: "other port", token: with("start", func(c jwt.MapClaims) { c["rtmp_port"] = 1936 }), wantErr: "rtmp_port 1936, want 1935"},
		{name: "port as text", token: with("start", func(c jwt.MapClaims) { c["rtmp_port"] = "1935" }), wantErr: "want a port number"},
		{name: "fractional port", token: with("start", func(c jwt.MapClaims) { c["rtmp_port"] = 1935.5 }), wantErr: "want a port number"},
	}
	c := &Callback{want: callbackTestWant, port: 1935}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, path := http.MethodPost, callbackPath
			if tt.method != "" {
				method = tt.method
			}
			if tt.path != "" {
				path = tt.path
			}
			r := httptest.NewRequest(method, path, http.NoBody)
			if tt.token != "" {
				r.Header.Set(callbackEventHeader, tt.token)
			}
			got, err := c.verify(r)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("accepted %+v, want an error with %q", got, tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("error %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestCallbackServer runs the server for real: replies, holds, the record
// of each request, and Stop and Restart on the same port.
func TestCallbackServer(t *testing.T) {
	hold := make(chan struct{})
	cb := StartCallback(t, callbackTestWant, func(r CallbackRequest) CallbackReply {
		switch r.Channel {
		case "held":
			return CallbackReply{StreamID: "sid-held", Hold: hold}
		case "denied":
			return CallbackReply{Status: http.StatusForbidden}
		}
		return CallbackReply{StreamID: "sid-" + r.Channel}
	})
	cb.ExpectRTMPPort(1935)
	tokens := make(map[string]string)
	for _, channel := range []string{"live", "denied", "held", "again"} {
		c := callbackTestClaims("start")
		c["channel"] = channel
		tokens[channel] = signCallbackTest(t, jwt.SigningMethodHS256, []byte(callbackTestWant.Secret), c)
	}
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	post := func(channel string) (*http.Response, error) {
		req, err := http.NewRequest(http.MethodPost, cb.URL(), http.NoBody)
		if err != nil {
			return nil, err
		}
		req.Header.Set(callbackEventHeader, tokens[channel])
		return hc.Do(req)
	}

	res, err := post("live")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get(callbackStreamIDHeader) != "sid-live" {
		t.Fatalf("approve: %d, stream-id %q", res.StatusCode, res.Header.Get(callbackStreamIDHeader))
	}
	res, err = post("denied")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden || res.Header.Get(callbackStreamIDHeader) != "" {
		t.Fatalf("deny: %d, stream-id %q", res.StatusCode, res.Header.Get(callbackStreamIDHeader))
	}

	type answer struct {
		status int
		err    error
	}
	held := make(chan answer, 1)
	go func() {
		res, err := post("held")
		if err != nil {
			held <- answer{err: err}
			return
		}
		res.Body.Close()
		held <- answer{status: res.StatusCode}
	}()
	reqs := cb.WaitFor(t, "the held request", 5*time.Second, func(reqs []CallbackRequest) bool { return len(reqs) == 3 })
	if reqs[2].Answered || reqs[2].Abandoned {
		t.Fatalf("held request ended before its release: %+v", reqs[2])
	}
	close(hold)
	if a := <-held; a.err != nil || a.status != http.StatusOK {
		t.Fatalf("held request: %+v", a)
	}
	cb.WaitFor(t, "the held answer", 5*time.Second, func(reqs []CallbackRequest) bool { return reqs[2].Answered })

	cb.Stop()
	if _, err := post("live"); err == nil {
		t.Fatal("a stopped callback server answered")
	}
	cb.Restart()
	if res, err := post("again"); err != nil {
		t.Fatalf("after Restart: %v", err)
	} else {
		res.Body.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cb.Wait(ctx, func(reqs []CallbackRequest) bool { return len(reqs) == 4 && reqs[3].Channel == "again" }); err != nil {
		t.Fatalf("request after Restart not recorded: %v\n%s", err, FormatCallbackRequests(cb.Requests()))
	}
}
