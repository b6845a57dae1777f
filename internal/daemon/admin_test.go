package daemon

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/config"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// httpGet returns the status and body of url, with token as a bearer token if set.
func httpGet(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// TestAdminListenerFromAddress runs the daemon with ADMIN_ADDRESS on a free
// port and a token: the endpoints answer, the token is enforced and never
// logged, and the listener ends with the process.
func TestAdminListenerFromAddress(t *testing.T) {
	bin := sysBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "rtmp-server.env")
	const token = "admin-secret-token-77"
	ln := testpeer.Listen(t)
	writeEnv(t, cfgPath, fmt.Sprintf("RTMP_PORT=%d", ln.Addr().(*net.TCPAddr).Port), "BIND_ADDRESS=127.0.0.1")
	p := startServing(t, []string{"ADMIN_ADDRESS=127.0.0.1:0", "ADMIN_TOKEN=" + token}, ln, nil, bin, "--config", cfgPath)
	waitLog(t, p, "msg=ready", 1, 15*time.Second)
	m := regexp.MustCompile(`msg=listening proto=http addr=(\S+) from=ADMIN_ADDRESS token=true`).FindStringSubmatch(p.Stderr.String())
	if m == nil {
		t.Fatalf("no admin listening line:\n%s", p.Stderr.String())
	}
	base := "http://" + m[1]
	if code, _ := httpGet(t, base+"/readyz", ""); code != http.StatusUnauthorized {
		t.Errorf("/readyz without the token: %d, want 401", code)
	}
	for _, path := range []string{"/readyz", "/healthz", "/v1/streams"} {
		if code, body := httpGet(t, base+path, token); code != http.StatusOK {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}
	if code, body := httpGet(t, base+"/metrics", token); code != http.StatusOK || !strings.Contains(body, "rtmp_publishers 0") ||
		!strings.Contains(body, "rtmp_redis_connected 0") || !strings.Contains(body, "process_cpu_seconds_total") {
		t.Errorf("/metrics: %d\n%s", code, body)
	}
	p.Signal(t, syscall.SIGTERM)
	if code := p.ExitCode(t, 15*time.Second); code != 0 {
		t.Errorf("exit %d:\n%s", code, p.Stderr.String())
	}
	if strings.Contains(p.Stderr.String(), token) {
		t.Errorf("the log shows ADMIN_TOKEN:\n%s", p.Stderr.String())
	}
}

// TestAdminSocketActivation hands the daemon an "admin" socket through
// systemd-socket-activate, as rtmp-server-admin.socket does; it is served
// although ADMIN_ADDRESS is off.
func TestAdminSocketActivation(t *testing.T) {
	activate := testpeer.Need(t, "systemd-socket-activate")
	bin := sysBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "rtmp-server.env")
	writeEnv(t, cfgPath, "RTMP_PORT=1", "ADMIN_ADDRESS=")
	notify := newNotifySocket(t)
	rtmpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	adminAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startProc(t, nil, activate, "-l", rtmpAddr, "-l", adminAddr, "--fdname=rtmp:admin", "-E", "NOTIFY_SOCKET="+notify.path,
		bin, "--config", cfgPath)
	waitListening(t, rtmpAddr)
	notify.expect(t, "READY=1", 15*time.Second)
	if code, body := httpGet(t, "http://"+adminAddr+"/readyz", ""); code != http.StatusOK {
		t.Fatalf("/readyz on the activated socket: %d %s\n%s", code, body, p.Stderr.String())
	}
	if code, body := httpGet(t, "http://"+adminAddr+"/v1/streams", ""); code != http.StatusOK || !strings.Contains(body, `"streams": []`) {
		t.Errorf("/v1/streams: %d %s", code, body)
	}
	waitLog(t, p, "proto=http addr="+adminAddr+" from=systemd", 1, 5*time.Second)
}

func TestAdminSettingsNeedRestart(t *testing.T) {
	old := config.Default()
	cfg := old
	cfg.AdminAddress, cfg.AdminToken = "127.0.0.1:9100", "new-token"
	got := restartOnly(old, cfg)
	if !slices.Contains(got, "ADMIN_ADDRESS") || !slices.Contains(got, "ADMIN_TOKEN") {
		t.Errorf("restart-only changes %v, want ADMIN_ADDRESS and ADMIN_TOKEN", got)
	}
	if strings.Contains(strings.Join(got, " "), "new-token") {
		t.Error("the list shows the token")
	}
}
