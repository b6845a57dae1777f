package admin

import (
	"fmt"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/rtmp-server/rtmp-server/internal/hub"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// BenchmarkScrape is the cost of one GET /metrics (and of one GET
// /v1/streams) with the given streams and players: what a scraper adds to
// the server's CPU per scrape.
func BenchmarkScrape(b *testing.B) {
	for _, tc := range []struct{ streams, players int }{{1, 1000}, {100, 10}} {
		h := hub.New()
		for i := range tc.streams {
			channel := fmt.Sprintf("ch%d", i)
			pub, _, err := h.Publish(channel, "k", "id", fakePublisher{}, hub.PublishOptions{ChunkSize: 4096})
			if err != nil {
				b.Fatal(err)
			}
			pub.Write(message.TypeVideo, 0, []byte{0x17, 0x01, 0, 0, 0, 1}, false)
			for j := range tc.players {
				if _, err := h.Play(channel, hub.NewPlayer(uint64(j), "k", hub.NewQueue(nil), nopEvents{})); err != nil {
					b.Fatal(err)
				}
			}
		}
		handler := (&Server{Source: h}).Handler()
		for _, path := range []string{"/metrics", "/v1/streams"} {
			b.Run(fmt.Sprintf("%s/streams=%d/players=%d", path, tc.streams, tc.players), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					w := httptest.NewRecorder()
					handler.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
					if w.Code != 200 {
						b.Fatal(w.Code)
					}
					_, _ = io.Copy(io.Discard, w.Body)
				}
			})
		}
	}
}

type nopEvents struct{}

func (nopEvents) Accepted()       {}
func (nopEvents) PublishStarted() {}
func (nopEvents) Unpublished()    {}
func (nopEvents) Rejected(error)  {}
