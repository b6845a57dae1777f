package main

import "testing"

func TestParseURL(t *testing.T) {
	tests := []struct {
		in             string
		addr, app, key string
		wantErr        bool
	}{
		{in: "rtmp://127.0.0.1:1935/live/key", addr: "127.0.0.1:1935", app: "live", key: "key"},
		{in: "rtmp://example.org/chan/k", addr: "example.org:1935", app: "chan", key: "k"},
		{in: "rtmp://[::1]:2000/a/b/c", addr: "[::1]:2000", app: "a", key: "b/c"},
		{in: "rtmp://host/onlyapp", wantErr: true},
		{in: "http://host/a/b", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			addr, app, key, err := parseURL(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if addr != tt.addr || app != tt.app || key != tt.key {
				t.Errorf("got %q %q %q, want %q %q %q", addr, app, key, tt.addr, tt.app, tt.key)
			}
		})
	}
}

func TestBitrateFlag(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{in: "4000000", want: 4_000_000},
		{in: "2500k", want: 2_500_000},
		{in: "4M", want: 4_000_000},
		{in: "1.5M", want: 1_500_000},
		{in: "fast", wantErr: true},
		{in: "-1", wantErr: true},
	}
	for _, tt := range tests {
		var b bitrateFlag
		err := b.Set(tt.in)
		if (err != nil) != tt.wantErr || (err == nil && int(b) != tt.want) {
			t.Errorf("Set(%q) = %d, %v; want %d, error %v", tt.in, int(b), err, tt.want, tt.wantErr)
		}
	}
}
