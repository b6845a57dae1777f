package daemon

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain removes the server binary built for the process tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if sysBin != "" {
		os.RemoveAll(filepath.Dir(sysBin))
	}
	os.Exit(code)
}
