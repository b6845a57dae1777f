package testpeer

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// NeedGStreamer returns the path of gst-launch-1.0 when it and the named
// GStreamer elements are installed, or skips (fails under
// RTMP_TEST_REQUIRE_PEERS=1) the test: the elements come in plugin
// packages that carry no program of their own.
func NeedGStreamer(t testing.TB, elements ...string) string {
	t.Helper()
	launch := Need(t, "gst-launch-1.0")
	inspect := Need(t, "gst-inspect-1.0")
	var missing []string
	for _, e := range elements {
		if err := exec.Command(inspect, "--exists", e).Run(); err != nil {
			missing = append(missing, e)
		}
	}
	if len(missing) == 0 {
		return launch
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("GStreamer elements %s are required (%s=1) but not installed", strings.Join(missing, ", "), RequireEnv)
	}
	t.Skipf("GStreamer elements %s not installed", strings.Join(missing, ", "))
	return ""
}
