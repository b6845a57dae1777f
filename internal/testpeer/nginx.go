package testpeer

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// NginxRootEnv names the directory that holds an unpacked nginx and
// libnginx-mod-rtmp (usr/sbin/nginx, usr/lib/nginx/modules/ngx_rtmp_module.so),
// as scripts/fetch-nginx.sh makes it; without it the tests look in that
// script's default place.
const NginxRootEnv = "RTMP_TEST_NGINX_ROOT"

// nginxStartLimit bounds nginx's start-up, until it accepts connections.
const nginxStartLimit = 10 * time.Second

// Nginx is an nginx-rtmp serving live applications on a loopback port,
// stopped when the test ends.
type Nginx struct {
	Addr string // host:port
	Proc *Process
}

// nginxRoot returns the unpacked nginx's directory, or "" when there is none.
func nginxRoot() string {
	root := os.Getenv(NginxRootEnv)
	if root == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache")
		}
		root = filepath.Join(cache, "rtmp-server-bench", "nginx", "root")
	}
	if _, err := os.Stat(filepath.Join(root, "usr/lib/nginx/modules/ngx_rtmp_module.so")); err != nil {
		return ""
	}
	return root
}

// StartNginx runs nginx with the RTMP module serving apps (live, with
// every client allowed to publish and play), or skips the test (fails it
// under RTMP_TEST_REQUIRE_PEERS=1) when there is no nginx-rtmp: run
// scripts/fetch-nginx.sh. nginx cannot take a listening socket as systemd
// passes one, so it gets a port that was free a moment ago, and another
// when that was taken meanwhile.
func StartNginx(t testing.TB, apps ...string) *Nginx {
	t.Helper()
	root := nginxRoot()
	if root == "" {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("nginx-rtmp is required (%s=1) but not found; run scripts/fetch-nginx.sh or set %s", RequireEnv, NginxRootEnv)
		}
		t.Skipf("nginx-rtmp not found; run scripts/fetch-nginx.sh or set %s", NginxRootEnv)
	}
	var libDirs []string
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(d.Name(), ".so") && !strings.Contains(path, "/nginx/modules/") {
			libDirs = append(libDirs, filepath.Dir(path))
		}
		return nil
	})
	var lastErr error
	for range 3 {
		port, err := freeLoopbackPort()
		if err != nil {
			t.Fatal(err)
		}
		n, err := startNginx(t, root, libDirs, port, apps)
		if err == nil {
			return n
		}
		lastErr = err
	}
	t.Fatalf("nginx: %v", lastErr)
	return nil
}

func startNginx(t testing.TB, root string, libDirs []string, port int, apps []string) (*Nginx, error) {
	dir := t.TempDir()
	var conf strings.Builder
	fmt.Fprintf(&conf, "daemon off;\nmaster_process off;\nworker_processes 1;\npid %s/nginx.pid;\nerror_log stderr info;\n", dir)
	fmt.Fprintf(&conf, "load_module %s;\nevents { worker_connections 1024; }\n", filepath.Join(root, "usr/lib/nginx/modules/ngx_rtmp_module.so"))
	fmt.Fprintf(&conf, "rtmp {\n  server {\n    listen 127.0.0.1:%d;\n    access_log off;\n", port)
	for _, app := range apps {
		fmt.Fprintf(&conf, "    application %s { live on; }\n", app)
	}
	conf.WriteString("  }\n}\n")
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(root, "usr/sbin/nginx"), "-p", dir, "-e", "stderr", "-c", confPath)
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+strings.Join(libDirs, ":"))
	p := StartCommand(t, 10*time.Minute, cmd)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(nginxStartLimit)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return &Nginx{Addr: addr, Proc: p}, nil
		}
		select {
		case <-p.Done():
			return nil, fmt.Errorf("exited (%v): %s", p.Err(), p.Stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Kill()
			return nil, fmt.Errorf("not accepting on %s within %v: %s", addr, nginxStartLimit, p.Stderr.String())
		}
	}
}
