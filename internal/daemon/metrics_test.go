package daemon

// Process-level tests of the metrics the daemon's collaborators feed:
// callbacks (against a callback server checking every token), the Redis
// subscriber (a real redis-server), the certificate watcher and SIGHUP
// (broken files written while the server runs), and failed handshakes
// (raw sockets). /metrics is read as Prometheus reads it, with the text
// parser.

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/rtmp-server/rtmp-server/internal/callback"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// metricsToken is the ADMIN_TOKEN of these tests.
const metricsToken = "metrics-test-admin-token-31"

// adminBase returns the base URL of the admin listener the process logged.
func adminBase(t *testing.T, log string) string {
	t.Helper()
	m := regexp.MustCompile(`msg=listening proto=http addr=(\S+)`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no admin listening line:\n%s", log)
	}
	return "http://" + m[1]
}

// scrapeMetrics reads /metrics with the token and parses it with the
// Prometheus text parser.
func scrapeMetrics(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpGet(t, base+"/metrics", metricsToken)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	return testpeer.ParseMetrics(t, body)
}

// metricValue returns the value of the series of name whose labels
// include want, given as name, value pairs (a histogram's sample count),
// and whether there is one.
func metricValue(fams map[string]*dto.MetricFamily, name string, want ...string) (float64, bool) {
	labels := make(map[string]string, len(want)/2)
	for i := 0; i+1 < len(want); i += 2 {
		labels[want[i]] = want[i+1]
	}
	return testpeer.MetricValue(fams, name, labels)
}

// waitMetric waits until the series of name with labels has value want,
// scraping every 20 ms.
func waitMetric(t *testing.T, base string, want float64, name string, labels ...string) {
	t.Helper()
	waitScrape(t, base, fmt.Sprintf("%s%v = %v", name, labels, want), func(fams map[string]*dto.MetricFamily) bool {
		got, ok := metricValue(fams, name, labels...)
		return ok && got == want
	})
}

// waitScrape scrapes every 20 ms until cond holds, failing the test after
// evWaitLimit.
func waitScrape(t *testing.T, base, what string, cond func(map[string]*dto.MetricFamily) bool) {
	t.Helper()
	deadline := time.Now().Add(evWaitLimit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		fams := scrapeMetrics(t, base)
		if cond(fams) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", evWaitLimit, what)
		}
		<-tick.C
	}
}

// expectMetric checks the series of name with labels in fams.
func expectMetric(t *testing.T, fams map[string]*dto.MetricFamily, want float64, name string, labels ...string) {
	t.Helper()
	if got, ok := metricValue(fams, name, labels...); !ok || got != want {
		t.Errorf("%s%v = %v (present %v), want %v", name, labels, got, ok, want)
	}
}

// TestMetricsOfCallbacksRedisAndHandshakes runs the server with the admin
// listener, a callback server and a redis-server, and checks the metrics
// move as it happens: start events by outcome, every stop attempt (two
// answered 500, one held, then accepted) with the pending gauge, the
// kill-session command by outcome, the Redis connection going up and
// down, refused publishes and failed handshakes. No response shows the
// stream key, and every endpoint wants the token.
func TestMetricsOfCallbacksRedisAndHandshakes(t *testing.T) {
	t.Parallel()
	bin := buildEventsServer(t)
	const key = "metricsStreamKey5150"
	release := make(chan struct{})
	var stopAttempts atomic.Int64
	approve := approveEv()
	cb := startEvCallback(t, func(r testpeer.CallbackRequest) testpeer.CallbackReply {
		switch {
		case r.Event == callback.EventStart && r.Channel == "denied":
			return testpeer.CallbackReply{Status: http.StatusForbidden}
		case r.Event == callback.EventStop:
			switch stopAttempts.Add(1) {
			case 1, 2:
				return testpeer.CallbackReply{Status: http.StatusInternalServerError}
			case 3:
				return testpeer.CallbackReply{Hold: release}
			}
		}
		return approve(r)
	})
	rd := testpeer.StartRedis(t)
	srv := startEvServer(t, bin, evSettings{callback: cb, redis: rd,
		env: []string{"ADMIN_ADDRESS=127.0.0.1:0", "ADMIN_TOKEN=" + metricsToken}})
	base := adminBase(t, srv.log.String())
	srv.waitLog(t, "the Redis subscription", 1, nil, msgIs("redis connected and subscribed"))
	waitMetric(t, base, 1, "rtmp_redis_connected")

	// A start approved, a start denied.
	good, st, err := evPublish(t, srv.addr, "good", key)
	if good != nil {
		defer good.Close()
	}
	if err != nil || st.Code != publishStart {
		t.Fatalf("publish: %q %v", st.Code, err)
	}
	bad, st, err := evPublish(t, srv.addr, "denied", key)
	if bad != nil {
		defer bad.Close()
	}
	if st.Code != publishBadName {
		t.Fatalf("publish with the start denied: %q %v, want %s", st.Code, err, publishBadName)
	}
	// The server counts a publish once it has answered it.
	waitScrape(t, base, "the accepted and the refused publish", func(fams map[string]*dto.MetricFamily) bool {
		accepted, _ := metricValue(fams, "rtmp_publishes_total", "result", "accepted")
		refused, _ := metricValue(fams, "rtmp_publishes_total", "result", "refused")
		return accepted == 1 && refused == 1
	})
	fams := scrapeMetrics(t, base)
	expectMetric(t, fams, 1, "rtmp_callback_requests_total", "event", "start", "outcome", "accepted")
	expectMetric(t, fams, 1, "rtmp_callback_requests_total", "event", "start", "outcome", "denied")
	expectMetric(t, fams, 2, "rtmp_callback_duration_seconds", "event", "start")
	expectMetric(t, fams, 1, "rtmp_publishers")
	expectMetric(t, fams, 0, "rtmp_callback_stop_events_pending")

	// kill-session ends the publisher: counted as acted; one for a channel
	// nobody publishes, as not held.
	sendEvCommand(t, rd, "kill-session>good")
	sendEvCommand(t, rd, "kill-session>nobody")
	waitMetric(t, base, 1, "rtmp_redis_commands_total", "command", "kill-session", "outcome", "acted")
	waitMetric(t, base, 1, "rtmp_redis_commands_total", "command", "kill-session", "outcome", "not_held")

	// Its stop is answered 500 twice, then held: two denied attempts, one
	// pending event.
	cb.WaitFor(t, "the third stop attempt", evWaitLimit, func(reqs []testpeer.CallbackRequest) bool {
		return len(evEvents(reqs, callback.EventStop, "good")) == 3
	})
	fams = scrapeMetrics(t, base)
	expectMetric(t, fams, 2, "rtmp_callback_requests_total", "event", "stop", "outcome", "denied")
	expectMetric(t, fams, 1, "rtmp_callback_stop_events_pending")
	expectMetric(t, fams, 0, "rtmp_publishers")
	close(release)
	waitMetric(t, base, 1, "rtmp_callback_requests_total", "event", "stop", "outcome", "accepted")
	fams = scrapeMetrics(t, base)
	expectMetric(t, fams, 3, "rtmp_callback_duration_seconds", "event", "stop")
	expectMetric(t, fams, 0, "rtmp_callback_stop_events_pending")
	if v, ok := metricValue(fams, "rtmp_callback_stop_events_lost_total"); ok && v != 0 {
		t.Errorf("lost stop events %v, want none", v)
	}

	// Failed handshakes: garbage, and a truncated C1.
	expectMetric(t, fams, 0, "rtmp_handshake_failures_total", "proto", "rtmp", "reason", "bad_version")
	for _, send := range [][]byte{bytes.Repeat([]byte{0xEE}, 1537), append([]byte{3}, make([]byte, 300)...)} {
		nc, err := net.Dial("tcp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write(send); err != nil {
			t.Fatal(err)
		}
		_ = nc.(*net.TCPConn).CloseWrite()
		_ = nc.SetReadDeadline(time.Now().Add(evWaitLimit))
		_, _ = nc.Read(make([]byte, 1))
		nc.Close()
	}
	waitMetric(t, base, 1, "rtmp_handshake_failures_total", "proto", "rtmp", "reason", "bad_version")
	waitMetric(t, base, 1, "rtmp_handshake_failures_total", "proto", "rtmp", "reason", "closed")

	// No response shows the key; every endpoint wants the token.
	for _, path := range []string{"/", "/metrics", "/v1/streams", "/healthz", "/readyz"} {
		if code, body := httpGet(t, base+path, metricsToken); code != http.StatusOK || strings.Contains(body, key) {
			t.Errorf("%s: %d, shows the key: %v", path, code, strings.Contains(body, key))
		}
		if code, _ := httpGet(t, base+path, ""); code != http.StatusUnauthorized {
			t.Errorf("%s without the token: %d, want 401", path, code)
		}
	}

	// Redis goes away: the gauge follows.
	rd.Stop()
	srv.waitLog(t, "the lost Redis connection", 1, nil, msgIs("redis connection lost, reconnecting"))
	waitMetric(t, base, 0, "rtmp_redis_connected")

	srv.terminate(t)
	if strings.Contains(srv.log.String(), metricsToken) {
		t.Error("the log shows ADMIN_TOKEN")
	}
}

// certMetricsServer runs the server with RTMPS from certPath and keyPath,
// the admin listener on and the given reload interval, and returns it
// with its admin base URL and RTMPS address.
func certMetricsServer(t *testing.T, certPath, keyPath string, interval int) (*testpeer.Process, string, string) {
	t.Helper()
	bin := sysBinary(t)
	cfgPath := filepath.Join(t.TempDir(), "rtmp-server.env")
	ln, sslLn := testpeer.Listen(t), testpeer.Listen(t)
	writeEnv(t, cfgPath, fmt.Sprintf("RTMP_PORT=%d", ln.Addr().(*net.TCPAddr).Port),
		fmt.Sprintf("SSL_PORT=%d", sslLn.Addr().(*net.TCPAddr).Port), "BIND_ADDRESS=127.0.0.1",
		"SSL_CERT="+certPath, "SSL_KEY="+keyPath, fmt.Sprintf("SSL_CHECK_RELOAD_SECONDS=%d", interval))
	p := startServing(t, []string{"ADMIN_ADDRESS=127.0.0.1:0", "ADMIN_TOKEN=" + metricsToken}, ln, sslLn, bin, "--config", cfgPath)
	waitLog(t, p, "msg=ready", 1, evReadyLimit)
	return p, adminBase(t, p.Stderr.String()), sslLn.Addr().String()
}

// brokenCert is a certificate file that does not parse.
var brokenCert = []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")

// TestMetricsOfCertificates: the expiry gauge is the served certificate's
// notAfter, before and after a renewal; a broken file written while the
// server runs counts one failure per SIGHUP (the watcher off), and keeps
// counting on every check of the watcher (no SIGHUP); plain RTMP on the
// RTMPS port counts as a failed TLS handshake.
func TestMetricsOfCertificates(t *testing.T) {
	t.Parallel()
	t.Run("SIGHUP", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		first := testpeer.SelfSigned(t, 1001)
		first.WriteFiles(t, certPath, keyPath)
		p, base, sslAddr := certMetricsServer(t, certPath, keyPath, 0)

		fams := scrapeMetrics(t, base)
		expectMetric(t, fams, float64(first.Cert.NotAfter.Unix()), "rtmp_certificate_expiry_timestamp_seconds")
		expectMetric(t, fams, 0, "rtmp_certificate_reload_failures_total")

		if err := os.WriteFile(certPath, brokenCert, 0o600); err != nil {
			t.Fatal(err)
		}
		for n := 1; n <= 2; n++ {
			p.Signal(t, syscall.SIGHUP)
			waitLog(t, p, "configuration reloaded", n, evWaitLimit)
			fams = scrapeMetrics(t, base)
			expectMetric(t, fams, float64(n), "rtmp_certificate_reload_failures_total")
			expectMetric(t, fams, float64(first.Cert.NotAfter.Unix()), "rtmp_certificate_expiry_timestamp_seconds")
		}

		// Renewed with a certificate that ends later.
		second := testpeer.SelfSigned(t, 2002)
		for !second.Cert.NotAfter.After(first.Cert.NotAfter) {
			second = testpeer.SelfSigned(t, 2002)
		}
		second.WriteFiles(t, certPath, keyPath)
		p.Signal(t, syscall.SIGHUP)
		waitLog(t, p, "configuration reloaded", 3, evWaitLimit)
		fams = scrapeMetrics(t, base)
		expectMetric(t, fams, 2, "rtmp_certificate_reload_failures_total")
		expectMetric(t, fams, float64(second.Cert.NotAfter.Unix()), "rtmp_certificate_expiry_timestamp_seconds")

		// Plain RTMP where TLS is expected.
		nc, err := net.Dial("tcp", sslAddr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = nc.Write(append([]byte{3}, make([]byte, 1536)...))
		_ = nc.SetReadDeadline(time.Now().Add(evWaitLimit))
		_, _ = nc.Read(make([]byte, 1))
		nc.Close()
		waitMetric(t, base, 1, "rtmp_handshake_failures_total", "proto", "tls", "reason", "invalid")
	})

	t.Run("watcher", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		testpeer.SelfSigned(t, 3003).WriteFiles(t, certPath, keyPath)
		p, base, _ := certMetricsServer(t, certPath, keyPath, 1)
		expectMetric(t, scrapeMetrics(t, base), 0, "rtmp_certificate_reload_failures_total")
		if err := os.WriteFile(certPath, brokenCert, 0o600); err != nil {
			t.Fatal(err)
		}
		// Two checks of the watcher, the second a repeat the log shows once.
		waitScrape(t, base, "two failed checks counted", func(fams map[string]*dto.MetricFamily) bool {
			v, _ := metricValue(fams, "rtmp_certificate_reload_failures_total")
			return v >= 2
		})
		if n := strings.Count(p.Stderr.String(), "cannot load certificate"); n != 1 {
			t.Errorf("the failure logged %d times, want once", n)
		}
	})
}
