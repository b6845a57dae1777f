package config

import (
	"strings"
	"testing"
)

func TestForwardVariables(t *testing.T) {
	for _, tt := range []struct {
		name     string
		env      map[string]string
		urls     int
		insecure bool
		err      string
	}{
		{"default: none", nil, 0, false, ""},
		{"two templates", map[string]string{"FORWARD_URLS": "rtmp://a/{channel}/{key}, rtmps://b/app/{stream_id}"}, 2, false, ""},
		{"insecure", map[string]string{"FORWARD_TLS_INSECURE": "YES"}, 0, true, ""},
		{"unknown placeholder", map[string]string{"FORWARD_URLS": "rtmp://a/{app}/{key}"}, 0, false, `FORWARD_URLS: forward: invalid URL template: rtmp://a/{app}/***: unknown placeholder "{app}"`},
		{"not RTMP", map[string]string{"FORWARD_URLS": "https://a/b/c"}, 0, false, "FORWARD_URLS: "},
		{"insecure not a boolean", map[string]string{"FORWARD_TLS_INSECURE": "maybe"}, 0, false, "FORWARD_TLS_INSECURE: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(env(tt.env))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Parse: %v, want an error with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(c.ForwardURLs) != tt.urls || c.ForwardTLSInsecure != tt.insecure {
				t.Errorf("ForwardURLs %v, ForwardTLSInsecure %v; want %d URLs, %v", c.ForwardURLs, c.ForwardTLSInsecure, tt.urls, tt.insecure)
			}
		})
	}
}
