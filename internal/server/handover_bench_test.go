package server

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/message"
	"github.com/rtmp-server/rtmp-server/internal/servertest"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// BenchmarkHandOver hands 50 publishers (25 video frames a second each,
// 4 KiB a frame) and 1000 players (20 a stream) from one Server to the
// next in process, as the daemon does through systemd's file descriptor
// store, and reports:
//
//	handover-ms   HandOver: stop every read loop, flush queues, save the state
//	adopt-ms      Adopt: restore every session and start its read loop
//	gap-p50-ms    per player, the longest time without media around the
//	gap-max-ms      hand-over (25 fps: 40 ms is no gap at all)
//
// The process start and systemd's round trip of a real restart are not in
// it (see BENCHMARKS.md).
func BenchmarkHandOver(b *testing.B) {
	publishers, playersPerStream := 50, 20
	if v, err := strconv.Atoi(os.Getenv("HANDOVER_BENCH_PUBLISHERS")); err == nil {
		publishers = v
	}
	for range b.N {
		r := benchHandOver(b, publishers, playersPerStream)
		b.ReportMetric(ms(r.handOver), "handover-ms")
		b.ReportMetric(ms(r.adopt), "adopt-ms")
		b.ReportMetric(ms(r.gapP50), "gap-p50-ms")
		b.ReportMetric(ms(r.gapMax), "gap-max-ms")
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type handOverResult struct {
	handOver, adopt, gapP50, gapMax time.Duration
}

func benchHandOver(b *testing.B, publishers, playersPerStream int) handOverResult {
	b.StopTimer()
	opts := DefaultOptions()
	opts.MaxIPConnections = 0
	logs := &syncBuffer{}
	first := mustNew(b, opts, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ln := testpeer.Listen(b)
	servertest.Serve(b, first, ln, ErrServerClosed)
	addr := ln.Addr().String()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, publishers*(playersPerStream+1))
	arrivals := make([][]time.Time, publishers*playersPerStream)
	frame := make([]byte, 4096)
	frame[0], frame[1] = 0x27, 0x01
	for i := range publishers {
		channel := fmt.Sprintf("s%d", i)
		pub, err := servertest.DialStream(b, addr, channel)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := pub.Publish("key"); err != nil {
			b.Fatal(err)
		}
		_ = pub.SetDeadline(time.Time{}) // DialStream's is for the set-up
		if err := pub.SetChunkSize(4096); err != nil {
			b.Fatal(err)
		}
		if err := pub.WriteMedia(message.TypeVideo, 0, videoHeader); err != nil {
			b.Fatal(err)
		}
		if err := pub.WriteMedia(message.TypeVideo, 0, keyframe(0)); err != nil {
			b.Fatal(err)
		}
		for j := range playersPerStream {
			player, err := servertest.DialStream(b, addr, channel)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := player.Play("key"); err != nil {
				b.Fatal(err)
			}
			_ = player.SetDeadline(time.Time{})
			wg.Add(1)
			go readArrivals(&wg, player, &arrivals[i*playersPerStream+j], stop, errs)
		}
		wg.Add(1)
		go publishFrames(&wg, pub, frame, stop, errs)
	}
	// Two seconds of steady state.
	time.Sleep(2 * time.Second) // a benchmark's warm-up, not synchronisation

	b.StartTimer()
	start := time.Now()
	ho, err := first.HandOver(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	handOver := time.Since(start)
	files := make([]*os.File, 0, len(ho.Files))
	for _, f := range ho.Files {
		fd, err := unix.Dup(int(f.Fd()))
		if err != nil {
			b.Fatal(err)
		}
		files = append(files, os.NewFile(uintptr(fd), "rtmp-handover"))
	}
	next := mustNew(b, opts, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	adoptStart := time.Now()
	res := next.Adopt(bytes.NewReader(ho.State), files)
	adopt := time.Since(adoptStart)
	b.StopTimer()
	ho.Done()
	if res.Sessions != publishers*(playersPerStream+1) || res.Failed != 0 {
		b.Fatalf("resumed %+v, want %d sessions; log:\n%s", res, publishers*(playersPerStream+1), logs.String())
	}
	servertest.Serve(b, next, testpeer.Listen(b), ErrServerClosed)
	time.Sleep(2 * time.Second) // media after the hand-over, to measure the gap
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}

	gaps := make([]time.Duration, 0, len(arrivals))
	for _, times := range arrivals {
		var gap time.Duration
		for k := 1; k < len(times); k++ {
			if times[k].After(start.Add(-time.Second)) {
				gap = max(gap, times[k].Sub(times[k-1]))
			}
		}
		gaps = append(gaps, gap)
	}
	slices.Sort(gaps)
	return handOverResult{handOver: handOver, adopt: adopt, gapP50: gaps[len(gaps)/2], gapMax: gaps[len(gaps)-1]}
}

// publishFrames sends an inter frame every 40 ms until stop.
func publishFrames(wg *sync.WaitGroup, pub *client.Conn, frame []byte, stop <-chan struct{}, errs chan<- error) {
	defer wg.Done()
	defer pub.Close()
	t := time.NewTicker(40 * time.Millisecond)
	defer t.Stop()
	for ts := uint32(40); ; ts += 40 {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if err := pub.WriteMedia(message.TypeVideo, ts, frame); err != nil {
			errs <- fmt.Errorf("publisher: %w", err)
			return
		}
	}
}

// readArrivals records when each media message arrives until stop.
func readArrivals(wg *sync.WaitGroup, player *client.Conn, times *[]time.Time, stop <-chan struct{}, errs chan<- error) {
	defer wg.Done()
	go func() {
		<-stop
		_ = player.Close()
	}()
	for {
		m, err := player.ReadMessage()
		if err != nil {
			select {
			case <-stop:
			default:
				errs <- fmt.Errorf("player: %w", err)
			}
			return
		}
		if m.Type == message.TypeVideo {
			*times = append(*times, time.Now())
		}
	}
}
