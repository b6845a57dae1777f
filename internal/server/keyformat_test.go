package server

import (
	"strings"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// TestPublishBadKeyFormatSaysWhatIsAllowed checks that a publish refused
// for the form of its key tells the encoder, and the log, which characters
// a key may have and how long it may be.
func TestPublishBadKeyFormatSaysWhatIsAllowed(t *testing.T) {
	const want = "Invalid stream key provided: 1 to 16 characters a-z A-Z 0-9 - _"
	ts := startServer(t, func(c *Options) { c.IDMaxLength = 16 })
	tests := []struct {
		name string
		key  string
	}{
		{"dot", "bad.key"},
		{"empty", ""},
		{"space", "no spaces"},
		{"too long", strings.Repeat("k", 17)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ts.dial(t, "live")
			st, err := c.Publish(tt.key)
			expectStatus(t, st, err, "NetStream.Publish.BadName")
			if st.Description != want {
				t.Errorf("description %q, want %q", st.Description, want)
			}
		})
	}
	const logged = `reason="invalid stream key: want 1 to 16 characters a-z A-Z 0-9 - _"`
	waitFor(t, "the refusals logged", 10*time.Second, func() bool {
		return strings.Count(ts.logs.String(), logged) == len(tests)
	})
}

// TestFFmpegBadKeyFormat checks the message as ffmpeg shows it.
func TestFFmpegBadKeyFormat(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ffmpegRefused(t, "Invalid stream key provided: 1 to 128 characters a-z A-Z 0-9 - _",
		append(testpeer.Source{Width: 64, Height: 64, Rate: 5, Duration: 2 * time.Second}.Args(), "-f", "flv", ts.url("live", "bad.key"))...)
}
