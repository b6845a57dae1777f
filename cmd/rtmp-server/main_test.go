package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/config"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// buildBinary builds the command, with a test version string, into a
// temporary directory of t that is removed when t ends.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rtmp-server")
	out, err := exec.Command("go", "build", "-ldflags", "-X main.version=1.2.3-test", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// runLimit bounds one run of the command; every case exits at once.
const runLimit = 30 * time.Second

// run runs bin with only PATH and env in its environment, and returns its
// output (stdout, then stderr) and exit code.
func run(t *testing.T, bin string, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	p := testpeer.StartCommand(t, runLimit, cmd)
	code := p.ExitCode(t, runLimit)
	return p.Stdout.String() + p.Stderr.String(), code
}

func TestCommandLine(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.env")
	if err := os.WriteFile(good, []byte("RTMP_PORT=19350\nRTMP_PLAY_WHITELIST=127.0.0.1, 10.0.0.0/8\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.env")
	if err := os.WriteFile(bad, []byte("RTMP_PORT=abc\nMAX_IP_CONCURRENT_CONNECTIONS=-1\nRTMP_PLAY_WHITELIST=10.0.0.0/33\nJWT_SECRET=hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		want     []string
		notWant  []string
	}{
		{"version", nil, []string{"--version"}, 0, []string{"rtmp-server 1.2.3-test"}, nil},
		{"check good file", nil, []string{"--config", good, "--check-config"}, 0, []string{"configuration OK", ":19350"}, nil},
		{"check bad file names every variable", nil, []string{"--config", bad, "--check-config"}, 1,
			[]string{"RTMP_PORT", "MAX_IP_CONCURRENT_CONNECTIONS", "RTMP_PLAY_WHITELIST"}, []string{"hunter2"}},
		{"environment overrides the file", []string{"RTMP_PORT=19999"}, []string{"--config", good, "--check-config"}, 0, []string{":19999"}, nil},
		{"bad environment value", []string{"RTMP_PORT=abc"}, []string{"--config", good, "--check-config"}, 1, []string{"RTMP_PORT"}, nil},
		{"missing explicit file", nil, []string{"--config", filepath.Join(dir, "nope.env"), "--check-config"}, 1, []string{"nope.env"}, nil},
		{"callback without secret", []string{"CALLBACK_URL=http://127.0.0.1:9/cb"}, []string{"--config", good, "--check-config"}, 1, []string{"JWT_SECRET"}, nil},
		{"bad value stops start-up", nil, []string{"--config", bad}, 1, []string{"RTMP_PORT"}, []string{"hunter2"}},
		{"unexpected argument", nil, []string{"extra"}, 2, []string{"unexpected argument"}, nil},
		{"bad profile address", nil, []string{"--config", good, "--pprof", "127.0.0.1:http-nope"}, 2, []string{"--pprof"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := run(t, bin, tt.env, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; output:\n%s", code, tt.wantCode, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out, w) {
					t.Errorf("output contains %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestREADMEDocumentsEveryVariable keeps the README's table complete.
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range config.Variables() {
		if !strings.Contains(string(readme), "| `"+v.Name+"` |") {
			t.Errorf("README.md does not document %s", v.Name)
		}
	}
}

func TestServePprof(t *testing.T) {
	addr, err := servePprof("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr.String() + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Fatalf("status %d: %.200s", resp.StatusCode, body)
	}
}
