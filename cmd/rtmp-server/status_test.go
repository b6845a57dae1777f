package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/admin"
	"github.com/rtmp-server/rtmp-server/internal/hub"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

type idlePublisher struct{}

func (idlePublisher) SessionID() uint64   { return 1 }
func (idlePublisher) Idle() time.Duration { return 0 }
func (idlePublisher) Kick(error)          {}

// TestStatusCommand runs `rtmp-server status` against an admin listener
// serving a live publication: the address and token come from the env
// file, or --admin; the table names the stream, never its key.
func TestStatusCommand(t *testing.T) {
	bin := buildBinary(t)
	h := hub.New()
	const key, token = "status-test-key-31", "status-token-8"
	pub, _, err := h.Publish("studio", key, "sid-77", idlePublisher{}, hub.PublishOptions{ChunkSize: 128})
	if err != nil {
		t.Fatal(err)
	}
	pub.Write(message.TypeVideo, 0, []byte{0x17, 0x01, 0, 0, 0, 1}, false)
	pub.Write(message.TypeAudio, 0, []byte{0xAF, 0x01, 1}, false)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &admin.Server{Source: h, Token: token}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-errc
	})
	addr := ln.Addr().String()
	dir := t.TempDir()
	envFile := func(lines ...string) string {
		p := filepath.Join(dir, "rtmp-server.env")
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	tests := []struct {
		name     string
		file     []string
		env      []string
		args     []string
		wantCode int
		want     []string
	}{
		{"address and token from the file", []string{"ADMIN_ADDRESS=" + addr, "ADMIN_TOKEN=" + token}, nil, nil, 0,
			[]string{"CHANNEL", "studio", "sid-77", "avc1", "mp4a"}},
		{"--admin, token from the environment", []string{"ADMIN_ADDRESS="}, []string{"ADMIN_TOKEN=" + token}, []string{"--admin", addr}, 0,
			[]string{"studio", "sid-77"}},
		{"wrong token", []string{"ADMIN_ADDRESS=" + addr, "ADMIN_TOKEN=nope"}, nil, nil, 1, []string{"ADMIN_TOKEN"}},
		{"listener off", []string{"ADMIN_ADDRESS="}, nil, nil, 1, []string{"ADMIN_ADDRESS is empty", "--admin"}},
		{"bad --admin", []string{"ADMIN_ADDRESS="}, nil, []string{"--admin", "localhost"}, 2, []string{"want host:port"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"status", "--config", envFile(tt.file...)}, tt.args...)
			out, code := run(t, bin, tt.env, args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d:\n%s", code, tt.wantCode, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, key) || (tt.wantCode == 0 && strings.Contains(out, token)) {
				t.Errorf("output shows the key or the token:\n%s", out)
			}
		})
	}
}
