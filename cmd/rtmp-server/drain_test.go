package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestDrainRefusesOtherProcesses: rtmp-server drain sends its signal only
// to an rtmp-server (SIGUSR1 ends most other programs), and says what was
// wrong otherwise.
func TestDrainRefusesOtherProcesses(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"another program", []string{"--pid", strconv.Itoa(os.Getpid())}, 1, "not rtmp-server"},
		{"no such process", []string{"--pid", "2147483647"}, 1, "process 2147483647"},
		{"negative pid", []string{"--pid", "-3"}, 1, "not a process id"},
		{"bad flag", []string{"--pid", "x"}, 2, "invalid value"},
		{"extra argument", []string{"now"}, 2, `unexpected argument "now"`},
	}
	bin := buildBinary(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := run(t, bin, nil, append([]string{"drain"}, tt.args...)...)
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Errorf("exit %d, output:\n%s\nwant exit %d and %q", code, out, tt.code, tt.want)
			}
		})
	}
}
