package sd

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// TestSystemdUnits runs packaging/systemd/check.sh: systemd-analyze verify
// of the unit files and their security exposure level. They live beside the
// code whose names (FileDescriptorName=rtmp, rtmps) and notifications
// (Type=notify, WatchdogSec=) they must agree with.
func TestSystemdUnits(t *testing.T) {
	testpeer.Need(t, "systemd-analyze")
	bash := testpeer.Need(t, "bash")
	script, err := filepath.Abs(filepath.Join("..", "..", "packaging", "systemd", "check.sh"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bash, script).CombinedOutput()
	t.Logf("%s:\n%s", script, out)
	if err != nil {
		t.Fatalf("check.sh: %v", err)
	}
}
