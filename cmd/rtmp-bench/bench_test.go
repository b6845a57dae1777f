package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/hub"
	"github.com/rtmp-server/rtmp-server/internal/server"
	"github.com/rtmp-server/rtmp-server/internal/servertest"
)

// startServer runs this project's server on a loopback port.
func startServer(t *testing.T) string {
	t.Helper()
	opts := server.DefaultOptions()
	opts.MaxIPConnections = 0
	opts.ChunkSize = 4096
	srv, err := server.New(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	return servertest.Start(t, srv, server.ErrServerClosed)
}

func testOptions(addr string) options {
	return options{
		url: "rtmp://" + addr + "/live/bench", duration: time.Second, warmup: 300 * time.Millisecond,
		drain: 30 * time.Second, bitrate: 1_000_000, fps: 30, gop: time.Second, chunkSize: 4096,
		pid: os.Getpid(), ramp: 0, vary: "app", timeout: 5 * time.Second,
	}
}

func TestFanOut(t *testing.T) {
	o := testOptions(startServer(t))
	o.players, o.stalled, o.idle = 3, 1, 2
	rep, err := execute(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	pr := rep.Players
	if pr == nil || rep.Publishers == nil || rep.Publishers.SentMsgs == 0 {
		t.Fatalf("nothing was sent: %+v", rep)
	}
	if pr.Connected != 3 || pr.Failed != 0 || pr.Disconnected != 0 || len(pr.Errors) != 0 {
		t.Errorf("players: %d connected, %d failed, %d disconnected, errors %v", pr.Connected, pr.Failed, pr.Disconnected, pr.Errors)
	}
	// The server drops nothing for three players reading a 1 Mbit/s stream.
	if pr.DeliveryPct != 100 || pr.Gaps != 0 || pr.Complete != 3 {
		t.Errorf("delivery %.2f %%, %d gaps, %d complete", pr.DeliveryPct, pr.Gaps, pr.Complete)
	}
	if pr.LatencyMs.Max <= 0 || pr.LatencyMs.P50 > pr.LatencyMs.P99 {
		t.Errorf("latency %+v", pr.LatencyMs)
	}
	if rep.Stalled == nil || rep.Stalled.Count != 1 || rep.Stalled.Failed != 0 {
		t.Errorf("stalled: %+v", rep.Stalled)
	}
	if rep.Idle == nil || rep.Idle.Connected != 2 {
		t.Errorf("idle: %+v", rep.Idle)
	}
	if rep.Server == nil || rep.Server.RSSEndMB <= 0 || rep.Server.GB <= 0 {
		t.Errorf("server: %+v", rep.Server)
	}
}

// TestBatchedFanOut runs enough players that the server delivers in
// batches (hub.CoalesceMinPlayers): every frame still reaches every player,
// in order.
func TestBatchedFanOut(t *testing.T) {
	o := testOptions(startServer(t))
	o.players = hub.CoalesceMinPlayers + 10
	o.bitrate = 200_000
	rep, err := execute(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	pr := rep.Players
	if pr == nil || pr.Connected != o.players || pr.Failed != 0 || pr.Disconnected != 0 || len(pr.Errors) != 0 {
		t.Fatalf("players: %+v", pr)
	}
	if pr.DeliveryPct != 100 || pr.Gaps != 0 || pr.Reordered != 0 || pr.Complete != o.players {
		t.Errorf("delivery %.2f %%, %d gaps, %d reordered, %d of %d complete", pr.DeliveryPct, pr.Gaps, pr.Reordered, pr.Complete, o.players)
	}
}

func TestIngest(t *testing.T) {
	o := testOptions(startServer(t))
	o.publishers = 3
	o.duration = 500 * time.Millisecond
	rep, err := execute(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Players != nil {
		t.Errorf("ingest run has players: %+v", rep.Players)
	}
	if p := rep.Publishers; p == nil || p.Started != 3 || len(p.Errors) != 0 {
		t.Errorf("publishers: %+v", p)
	}
}
