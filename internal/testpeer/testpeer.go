// Package testpeer finds and starts the real programs that tests talk to
// (ffmpeg, ffprobe, rtmpdump, redis-server, systemd-socket-activate) and
// holds what they share: a process with a deadline (StartProcess), the
// arguments of an ffmpeg publisher (PublishArgs), a self-signed certificate
// pair (SelfSigned), loopback listeners that are handed over rather than
// released and bound again (Listen, Activate). Serving this project's
// server for a test and dialing it is in package servertest.
//
// `make test` sets RTMP_TEST_REQUIRE_PEERS=1 after installing them, so a
// missing peer fails the run there; a bare `go test` skips such tests.
package testpeer

import (
	"os"
	"os/exec"
	"testing"
)

// RequireEnv is the variable that turns a missing peer from a skip into a failure.
const RequireEnv = "RTMP_TEST_REQUIRE_PEERS"

// Need returns the path of the named program, or skips (fails under
// RTMP_TEST_REQUIRE_PEERS=1) the test when it is not installed.
func Need(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s is required (%s=1) but not installed: %v", name, RequireEnv, err)
	}
	t.Skipf("%s not installed: %v", name, err)
	return ""
}
