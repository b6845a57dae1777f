package client

import (
	"errors"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want URL
		tc   string
	}{
		{"rtmp://h/app/key", URL{Host: "h:1935", App: "app", Name: "key"}, "rtmp://h:1935/app"},
		{"rtmps://h/app/key", URL{TLS: true, Host: "h:443", App: "app", Name: "key"}, "rtmps://h:443/app"},
		{"rtmp://[::1]:1936/app/a/b?x=1", URL{Host: "[::1]:1936", App: "app", Name: "a/b?x=1"}, "rtmp://[::1]:1936/app"},
	} {
		got, err := ParseURL(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		if tc := got.TCURL(); tc != tt.tc {
			t.Errorf("TCURL of %q = %q, want %q", tt.in, tc, tt.tc)
		}
	}
	for _, bad := range []string{"", "rtmp:h/app/k", "udp://h/a/k", "rtmp://h/app", "rtmp://h//k", "rtmp://u@h/a/k", "rtmp://h/a/k#f", "rtmp://%zz"} {
		if _, err := ParseURL(bad); !errors.Is(err, ErrBadURL) {
			t.Errorf("ParseURL(%q): %v, want ErrBadURL", bad, err)
		}
	}
}
