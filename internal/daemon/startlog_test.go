package daemon

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// TestStartupLogShowsSettingsByGroup runs the server binary and reads its
// start-up log: the effective settings come one short line per group, and
// no secret is shown.
func TestStartupLogShowsSettingsByGroup(t *testing.T) {
	bin := sysBinary(t)
	const (
		jwt      = "jwt-s3cret-in-the-env-file"
		redisPW  = "redis-s3cret-in-the-env-file"
		urlPW    = "url-s3cret"
		maxLine  = 200 // the single line these replace was about 1,100
		wantRTMP = "msg=config group=rtmp rtmp_port=%d bind_address=127.0.0.1 "
	)
	cfgPath := filepath.Join(t.TempDir(), "rtmp-server.env")
	ln := testpeer.Listen(t)
	port := ln.Addr().(*net.TCPAddr).Port
	writeEnv(t, cfgPath, fmt.Sprintf("RTMP_PORT=%d", port), "BIND_ADDRESS=127.0.0.1",
		"CALLBACK_URL=http://user:"+urlPW+"@127.0.0.1:9/", "JWT_SECRET="+jwt, "REDIS_PASSWORD="+redisPW)
	p := startServing(t, nil, ln, nil, bin, "--config", cfgPath)
	waitLog(t, p, "msg=ready", 1, 15*time.Second)
	p.Signal(t, syscall.SIGTERM)
	if rc := p.ExitCode(t, 15*time.Second); rc != 0 {
		t.Errorf("exit status %d", rc)
	}

	out := p.Stderr.String()
	for _, secret := range []string{jwt, redisPW, urlPW} {
		if strings.Contains(out, secret) {
			t.Errorf("the log shows the secret %q", secret)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if len(line) > maxLine {
			t.Errorf("log line of %d characters (want at most %d): %s", len(line), maxLine, line)
		}
	}
	for _, want := range []string{
		"msg=starting version=",
		fmt.Sprintf(wantRTMP, port),
		"msg=config group=rtmps ",
		"msg=config group=limits ",
		"msg=config group=play ",
		"msg=config group=callback callback_url=http://user:xxxxx@127.0.0.1:9/ jwt_secret=[redacted] ",
		"msg=config group=redis redis_use=false ",
		"redis_password=[redacted] ",
		"msg=config group=log ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the log", want)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", out)
	}
}
