package config

import (
	"errors"
	"strings"
	"testing"
)

func TestAdminAddress(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr string
	}{
		{"unset: the default", nil, "127.0.0.1:9935", ""},
		{"set empty: off", map[string]string{"ADMIN_ADDRESS": ""}, "", ""},
		{"spaces: off", map[string]string{"ADMIN_ADDRESS": "  "}, "", ""},
		{"OFF", map[string]string{"ADMIN_ADDRESS": "off"}, "", ""},
		{"all interfaces", map[string]string{"ADMIN_ADDRESS": ":9100"}, ":9100", ""},
		{"IPv6", map[string]string{"ADMIN_ADDRESS": "[::1]:9935"}, "[::1]:9935", ""},
		{"host name", map[string]string{"ADMIN_ADDRESS": "localhost:80"}, "localhost:80", ""},
		{"no port", map[string]string{"ADMIN_ADDRESS": "127.0.0.1"}, "", `ADMIN_ADDRESS: "127.0.0.1" is not valid (want host:port`},
		{"port 0: a free port", map[string]string{"ADMIN_ADDRESS": "127.0.0.1:0"}, "127.0.0.1:0", ""},
		{"port too big", map[string]string{"ADMIN_ADDRESS": "127.0.0.1:65536"}, "", "want a port 0..65535"},
		{"port not a number", map[string]string{"ADMIN_ADDRESS": "127.0.0.1:http"}, "", "want a port 0..65535"},
		{"bad host", map[string]string{"ADMIN_ADDRESS": "bad host:80"}, "", "want an IP address or host name"},
		{"URL", map[string]string{"ADMIN_ADDRESS": "http://127.0.0.1:9935"}, "", "ADMIN_ADDRESS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.AdminAddress != tt.want {
				t.Errorf("AdminAddress %q, want %q", c.AdminAddress, tt.want)
			}
		})
	}
}

func TestAdminTokenIsRedacted(t *testing.T) {
	const token = "tok-very-secret-9"
	c, err := Parse(func(k string) (string, bool) {
		if k == "ADMIN_TOKEN" {
			return token, true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.AdminToken.Reveal() != token {
		t.Errorf("token %q", c.AdminToken.Reveal())
	}
	var b strings.Builder
	for _, g := range c.LogGroups() {
		for _, a := range g.Attrs {
			b.WriteString(a.String())
		}
	}
	if strings.Contains(b.String(), token) || !strings.Contains(b.String(), "admin_token") {
		t.Errorf("log groups show the token or omit it: %s", b.String())
	}
}
