package handshake

import (
	"os"
	"testing"
)

// TestRecordedPeers replays the C0+C1+C2 that real ffmpeg and rtmpdump sent
// (recorded by TestRealPeers -record, with fixedConfig on the server side)
// and checks that Server answers byte for byte as it did then. To refresh the
// recordings after a change of peer versions or of Server's output:
//
//	go test ./internal/handshake -run TestRealPeers -record
//	go test ./internal/handshake -update
func TestRecordedPeers(t *testing.T) {
	for _, peer := range realPeers {
		t.Run(peer.name, func(t *testing.T) {
			request, err := os.ReadFile(recordingPath(peer.name, "c0c1c2"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(recordingPath(peer.name, "s0s1s2"))
			if err != nil {
				t.Fatal(err)
			}
			got, info, err := runServer(t, request, fixedConfig())
			if err != nil {
				t.Fatalf("Server: %v", err)
			}
			if info.Digest != peer.wantDigest {
				t.Errorf("digest form = %v, want %v (%+v)", info.Digest, peer.wantDigest, info)
			}
			if info.C2 != peer.wantC2 {
				t.Errorf("C2 form = %v, want %v", info.C2, peer.wantC2)
			}
			checkResponse(t, got, request[1:1+Size], peer.wantDigest, info.Scheme)
			if string(got) != string(want) {
				t.Errorf("response differs from the recorded %s", recordingPath(peer.name, "s0s1s2"))
			}
		})
	}
}
