package forward

import (
	"errors"
	"strings"
	"testing"

	"github.com/rtmp-server/rtmp-server/internal/client"
)

func TestParseTemplate(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     string // the expansion for channel "live", key "k-1", stream id "a b"; "" for an error
		err      string
	}{
		{"all placeholders", "rtmp://origin-1/{channel}/{key}?id={stream_id}", "rtmp://origin-1/live/k-1?id=a%20b", ""},
		{"rtmps with port", "rtmps://live.example.com:4443/app/{key}", "rtmps://live.example.com:4443/app/k-1", ""},
		{"literal key", "rtmp://a.rtmp.youtube.com/live2/abcd-efgh", "rtmp://a.rtmp.youtube.com/live2/abcd-efgh", ""},
		{"upper-case scheme", "RTMP://h/app/{key}", "RTMP://h/app/k-1", ""},
		{"unknown placeholder", "rtmp://h/{app}/{key}", "", `unknown placeholder "{app}"`},
		{"unclosed", "rtmp://h/app/{key", "", "{ without }"},
		{"unopened", "rtmp://h/app/key}", "", "} without {"},
		{"http", "http://h/app/{key}", "", `scheme "http" (want rtmp or rtmps)`},
		{"no scheme", "h/app/{key}", "", "no scheme"},
		{"no host", "rtmp:///app/{key}", "", "no host"},
		{"no stream name", "rtmp://h/app", "", "no stream name"},
		{"no application", "rtmp://h/", "", "no application"},
		{"user info", "rtmp://u:p@h/app/{key}", "", "user information"},
		{"too long", "rtmp://h/app/" + strings.Repeat("x", MaxURLLength), "", "bytes (at most"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tpl, err := ParseTemplate(tt.in)
			if tt.err != "" {
				if err == nil || !errors.Is(err, ErrBadTemplate) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseTemplate(%q) = %v, want an ErrBadTemplate with %q", tt.in, err, tt.err)
				}
				if strings.Contains(err.Error(), "k-1") {
					t.Errorf("error shows a key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tpl.Expand("live", "k-1", "a b"); got != tt.want {
				t.Errorf("Expand = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseList(t *testing.T) {
	l, err := ParseList(" rtmp://a/{channel}/{key} ,, rtmps://b/app/{key} ")
	if err != nil || len(l) != 2 {
		t.Fatalf("ParseList = %v, %v; want 2 templates", l, err)
	}
	if l, err := ParseList("  "); err != nil || l != nil {
		t.Errorf("empty list = %v, %v", l, err)
	}
	if _, err := ParseList("rtmp://a/x/{key},ftp://b/x/y"); err == nil || !strings.Contains(err.Error(), "ftp") {
		t.Errorf("a bad second template: %v", err)
	}
	if _, err := ParseList(strings.Repeat("rtmp://a/b/c,", MaxTemplates+1)); err == nil {
		t.Errorf("%d templates accepted", MaxTemplates+1)
	}
}

func TestMask(t *testing.T) {
	for _, tt := range []struct{ in, key, want string }{
		{"rtmp://origin/live/secret", "secret", "rtmp://origin:1935/live/***"},
		{"rtmps://h:4443/secret/x?token=1", "secret", "rtmps://h:4443/***/***"},
	} {
		u, err := client.ParseURL(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := Mask(u, tt.key); got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	tpl, _ := ParseTemplate("rtmp://a.rtmp.youtube.com/live2/abcd-efgh")
	if got := tpl.String(); got != "rtmp://a.rtmp.youtube.com/live2/***" {
		t.Errorf("template shown as %q", got)
	}
}

// TestMaskKey: a target's error status may quote the stream name it
// refused; the key is masked in the text a Status and a log line show.
func TestMaskKey(t *testing.T) {
	const key = "my key/1"
	err := errors.New(`forward: target sent an error status: NetStream.Publish.BadName: "my key/1" (as my%20key%2F1) is in use`)
	got := maskKey(err, key).Error()
	if strings.Contains(got, "my key") || strings.Contains(got, "my%20key") {
		t.Errorf("maskKey left the key: %s", got)
	}
	if want := `BadName: "***" (as ***) is in use`; !strings.Contains(got, want) {
		t.Errorf("maskKey = %s, want it to contain %s", got, want)
	}
	plain := errors.New("dial: connection refused")
	if maskKey(plain, key) != plain || maskKey(plain, "") != plain {
		t.Error("maskKey changed an error without the key")
	}
}
