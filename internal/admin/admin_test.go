package admin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/rtmp-server/rtmp-server/internal/hub"
	"github.com/rtmp-server/rtmp-server/internal/message"
	"github.com/rtmp-server/rtmp-server/internal/servertest"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// startAdmin serves srv on a free port and returns its base URL.
func startAdmin(t testing.TB, srv *Server) string {
	t.Helper()
	return "http://" + servertest.Start(t, srv, ErrServerClosed)
}

// get requests url and returns the status and body.
func get(t testing.TB, method, url, token string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// scrape parses /metrics with the Prometheus text parser.
func scrape(t testing.TB, base, token string) map[string]*dto.MetricFamily {
	t.Helper()
	status, body := get(t, "GET", base+"/metrics", token, nil)
	if status != http.StatusOK {
		t.Fatalf("/metrics: %d %s", status, body)
	}
	return testpeer.ParseMetrics(t, body)
}

// value returns the value of the series of name whose labels include
// want, and whether it exists.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	return testpeer.MetricValue(fams, name, want)
}

type fakePublisher struct{}

func (fakePublisher) SessionID() uint64   { return 1 }
func (fakePublisher) Idle() time.Duration { return 0 }
func (fakePublisher) Kick(error)          {}

func TestHTTPRules(t *testing.T) {
	const token = "admin-token-1234"
	var ready atomic.Bool
	ready.Store(true)
	var healthErr atomic.Pointer[error]
	srv := &Server{
		Source: hub.New(), Token: token,
		Ready: ready.Load,
		Healthy: func(context.Context) error {
			if p := healthErr.Load(); p != nil {
				return *p
			}
			return nil
		},
	}
	base := startAdmin(t, srv)
	tests := []struct {
		name   string
		method string
		path   string
		token  string
		body   io.Reader
		want   int
	}{
		{"metrics", "GET", "/metrics", token, nil, 200},
		{"metrics without token", "GET", "/metrics", "", nil, 401},
		{"metrics with a wrong token", "GET", "/metrics", "admin-token-1235", nil, 401},
		{"metrics with a longer token", "GET", "/metrics", token + "x", nil, 401},
		{"streams", "GET", "/v1/streams", token, nil, 200},
		{"streams without token", "GET", "/v1/streams", "", nil, 401},
		{"unknown channel", "GET", "/v1/streams/nope", token, nil, 404},
		{"healthz", "GET", "/healthz", token, nil, 200},
		{"readyz", "GET", "/readyz", token, nil, 200},
		{"healthz without token", "GET", "/healthz", "", nil, 401},
		{"status page", "GET", "/", token, nil, 200},
		{"status page without token", "GET", "/", "", nil, 401},
		{"status page with a wrong token", "GET", "/", "x" + token, nil, 401},
		{"head", "HEAD", "/healthz", token, nil, 200},
		{"unknown path", "GET", "/nope", token, nil, 404},
		{"unknown path under the page", "GET", "/index.html", token, nil, 404},
		{"post", "POST", "/metrics", token, nil, 405},
		{"delete", "DELETE", "/v1/streams", token, nil, 405},
		{"body", "GET", "/metrics", token, strings.NewReader("hello"), 413},
		{"post with body", "POST", "/v1/streams", token, strings.NewReader("{}"), 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, body := get(t, tt.method, base+tt.path, tt.token, tt.body); got != tt.want {
				t.Errorf("%s %s: %d, want %d: %s", tt.method, tt.path, got, tt.want, body)
			}
		})
	}

	t.Run("authorization forms", func(t *testing.T) {
		for _, tc := range []struct {
			name, path, header string
			want               int
		}{
			{"basic, the token as password", "/", "Basic " + base64.StdEncoding.EncodeToString([]byte("anyone:"+token)), 200},
			{"basic, no user name", "/metrics", "Basic " + base64.StdEncoding.EncodeToString([]byte(":"+token)), 200},
			{"basic, a wrong password", "/", "Basic " + base64.StdEncoding.EncodeToString([]byte(token+":x")), 401},
			{"basic, malformed", "/", "Basic " + token, 401},
			{"bearer, any case", "/v1/streams", "bearer " + token, 200},
			{"bearer, empty", "/", "Bearer ", 401},
			{"the token alone", "/", token, 401},
			{"the token in the URL", "/?token=" + token, "", 401},
			{"the token in the URL of the API", "/v1/streams?access_token=" + token, "", 401},
		} {
			req, err := http.NewRequest("GET", base+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.want {
				t.Errorf("%s: %d, want %d", tc.name, res.StatusCode, tc.want)
			}
			if res.StatusCode == 401 {
				challenges := strings.Join(res.Header.Values("WWW-Authenticate"), "\n")
				if !strings.Contains(challenges, "Bearer ") || !strings.Contains(challenges, "Basic ") {
					t.Errorf("%s: challenges %q, want Bearer and Basic", tc.name, challenges)
				}
			}
		}
	})

	t.Run("chunked body", func(t *testing.T) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = io.WriteString(conn, "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+token+
			"\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
		if err != nil {
			t.Fatal(err)
		}
		line := make([]byte, 12)
		if _, err := io.ReadFull(conn, line); err != nil {
			t.Fatal(err)
		}
		if string(line) != "HTTP/1.1 400" {
			t.Errorf("chunked body: %q, want HTTP/1.1 400", line)
		}
	})

	t.Run("not ready, unhealthy", func(t *testing.T) {
		ready.Store(false)
		err := errors.New("stream registry did not answer in time")
		healthErr.Store(&err)
		if got, _ := get(t, "GET", base+"/readyz", token, nil); got != 503 {
			t.Errorf("/readyz while not ready: %d, want 503", got)
		}
		if got, body := get(t, "GET", base+"/healthz", token, nil); got != 503 || !strings.Contains(body, "did not answer") {
			t.Errorf("/healthz while unhealthy: %d %q, want 503 with the reason", got, body)
		}
	})
}

func TestMetricsSeriesFollowTheStream(t *testing.T) {
	h := hub.New()
	m := NewMetrics(h)
	base := startAdmin(t, &Server{Source: h, Metrics: m})
	const secret = "the-stream-key-0042"

	fams := scrape(t, base, "")
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "rtmp_publishers", "rtmp_received_bytes_total"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	if _, ok := value(fams, "rtmp_stream_received_bytes_total", map[string]string{"channel": "live"}); ok {
		t.Error("series for a stream before it exists")
	}

	pub, _, err := h.Publish("live", secret, "sid-1", fakePublisher{}, hub.PublishOptions{ChunkSize: 128, GOPCacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	pub.Write(message.TypeVideo, 0, []byte{0x17, 0x01, 0, 0, 0, 1, 2, 3}, false)
	pub.Write(message.TypeAudio, 0, []byte{0xAF, 0x01, 9}, false)
	m.PublishAccepted()
	m.PublishRefused("stream already publishing")
	m.PublishRefused(strings.Repeat("x", 1000))
	m.CallbackDone("start", "accepted", 30*time.Millisecond)

	fams = scrape(t, base, "")
	if v, ok := value(fams, "rtmp_stream_received_bytes_total", map[string]string{"channel": "live", "track": "video"}); !ok || v != 8 {
		t.Errorf("video bytes of live: %v %v, want 8", v, ok)
	}
	if v, _ := value(fams, "rtmp_received_messages_total", nil); v != 2 {
		t.Errorf("rtmp_received_messages_total %v, want 2", v)
	}
	if v, _ := value(fams, "rtmp_publishers", nil); v != 1 {
		t.Errorf("rtmp_publishers %v, want 1", v)
	}
	if v, _ := value(fams, "rtmp_publishes_total", map[string]string{"result": "refused", "reason": "stream already publishing"}); v != 1 {
		t.Errorf("refused publishes %v, want 1", v)
	}
	if v, _ := value(fams, "rtmp_publishes_total", map[string]string{"result": "refused", "reason": strings.Repeat("x", maxLabelLen)}); v != 1 {
		t.Errorf("a long reason is not clipped to %d bytes", maxLabelLen)
	}
	if v, _ := value(fams, "rtmp_callback_duration_seconds", map[string]string{"event": "start"}); v != 1 {
		t.Errorf("callback histogram count %v, want 1", v)
	}
	_, body := get(t, "GET", base+"/metrics", "", nil)
	_, api := get(t, "GET", base+"/v1/streams", "", nil)
	_, one := get(t, "GET", base+"/v1/streams/live", "", nil)
	for what, text := range map[string]string{"/metrics": body, "/v1/streams": api, "/v1/streams/live": one} {
		if strings.Contains(text, secret) {
			t.Errorf("%s shows the stream key", what)
		}
	}
	var resp StreamsResponse
	if err := json.Unmarshal([]byte(api), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Streams) != 1 || resp.Streams[0].StreamID != "sid-1" || resp.Streams[0].Video == nil || resp.Streams[0].Video.Codec != "avc1" {
		t.Errorf("/v1/streams: %s", api)
	}

	h.Unpublish(pub)
	fams = scrape(t, base, "")
	for _, name := range []string{"rtmp_stream_received_bytes_total", "rtmp_stream_frames_per_second", "rtmp_stream_players"} {
		if _, ok := value(fams, name, map[string]string{"channel": "live"}); ok {
			t.Errorf("%s{channel=live} still there after the stream ended", name)
		}
	}
}

func TestLabelValuesAreBounded(t *testing.T) {
	m := NewMetrics(hub.New())
	for i := range 100 {
		m.PlayRefused(strings.Repeat("r", i+1))
	}
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "rtmp_plays_total" && len(f.Metric) != maxLabelValues+1 {
			t.Errorf("%d series, want %d and other", len(f.Metric), maxLabelValues)
		}
	}
}
