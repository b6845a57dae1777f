// Command rtmp-bench loads an RTMP server and measures it: one process
// publishes synthetic real-time streams, plays them back with many players
// and reports delivery, latency, and the server's CPU and memory.
//
//	rtmp-bench -url rtmp://127.0.0.1:1935/live/key -players 500 -pid $(pidof rtmp-server)
//	rtmp-bench -url ... -idle 1000 -pid PID             memory per idle player
//	rtmp-bench -url ... -publishers 200 -bitrate 2M     ingest only
//	rtmp-bench -table -a ours -b nginx results/*.json   compare saved -json runs
//
// It works against any RTMP server. Streams other than the one in -url
// (idle and ingest streams) are told apart by a suffix on the key, or on
// the app with -vary app for servers where the app names the stream.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

func main() {
	var o options
	var bitrate bitrateFlag = 4_000_000
	var chunkSize uint
	flag.StringVar(&o.url, "url", "rtmp://127.0.0.1:1935/live/bench", "stream to publish and play: rtmp://host:port/app/key")
	flag.IntVar(&o.players, "players", 10, "players that read the stream")
	flag.IntVar(&o.stalled, "stalled", 0, "players that play the stream and never read")
	flag.IntVar(&o.idle, "idle", 0, "players that play a stream nobody publishes (memory per idle player, needs -pid)")
	flag.IntVar(&o.publishers, "publishers", 0, "ingest only: this many publishers on distinct streams and no players")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "length of the measurement window")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "settling time after everyone has connected, before measuring")
	flag.DurationVar(&o.drain, "drain", 5*time.Second, "longest wait for players to catch up after the window")
	flag.Var(&bitrate, "bitrate", "bitrate of each published stream, bits/s (k and M suffixes allowed)")
	flag.Float64Var(&o.fps, "fps", 30, "video frames per second")
	flag.DurationVar(&o.gop, "gop", 2*time.Second, "keyframe interval")
	flag.UintVar(&chunkSize, "chunk-size", 4096, "chunk size the publishers announce with Set Chunk Size")
	flag.IntVar(&o.pid, "pid", 0, "process ID of the server, to report its CPU and memory (same machine)")
	flag.Float64Var(&o.ramp, "ramp", 200, "connections opened per second; 0 opens them all at once")
	flag.StringVar(&o.vary, "vary", "key", "what tells the idle and ingest streams apart: key (nginx-rtmp and most servers) or app (servers where the app is the stream)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "connect, handshake and play timeout")
	flag.StringVar(&o.label, "label", "", "name of the server under test, carried into the JSON")
	flag.StringVar(&o.scenario, "scenario", "", "name of the scenario, carried into the JSON")
	jsonOut := flag.Bool("json", false, "print the report as JSON on standard output (the summary goes to standard error)")
	table := flag.Bool("table", false, "print a Markdown table comparing the -json reports named as arguments")
	labelA := flag.String("a", "ours", "with -table: label of the first server")
	labelB := flag.String("b", "nginx", "with -table: label of the second server")
	quiet := flag.Bool("q", false, "do not print progress on standard error")
	flag.Parse()
	if !*quiet {
		o.progress = os.Stderr
	}

	if *table {
		if err := printTable(os.Stdout, flag.Args(), *labelA, *labelB); err != nil {
			fatal(err)
		}
		return
	}
	if flag.NArg() > 0 {
		fatal(fmt.Errorf("unexpected argument %q", flag.Arg(0)))
	}
	o.bitrate = int(bitrate)
	if o.publishers > 0 {
		o.players, o.stalled = 0, 0 // ingest runs have no players
	}
	o.chunkSize = uint32(chunkSize)
	if err := o.validate(); err != nil {
		fatal(err)
	}

	// The players allocate one buffer per message and keep almost nothing:
	// fewer collections leave more of the shared cores to the server.
	debug.SetGCPercent(400)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := execute(ctx, o)
	if err != nil {
		fatal(err)
	}
	if *jsonOut {
		rep.writeText(os.Stderr)
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fatal(err)
		}
		return
	}
	rep.writeText(os.Stdout)
}

func (o options) validate() error {
	switch {
	case o.players < 0 || o.stalled < 0 || o.idle < 0 || o.publishers < 0:
		return fmt.Errorf("-players, -stalled, -idle and -publishers must not be negative")
	case o.players+o.stalled+o.idle+o.publishers == 0:
		return fmt.Errorf("nothing to do: set -players, -stalled, -idle or -publishers")
	case o.fps <= 0 || o.fps > 240:
		return fmt.Errorf("-fps must be in (0, 240]")
	case o.gop <= 0:
		return fmt.Errorf("-gop must be positive")
	case o.bitrate < 8_000:
		return fmt.Errorf("-bitrate must be at least 8k")
	case o.chunkSize < 128 || o.chunkSize > 1<<24-1:
		return fmt.Errorf("-chunk-size must be in 128..16777215")
	case o.vary != "key" && o.vary != "app":
		return fmt.Errorf("-vary must be key or app")
	case o.duration <= 0:
		return fmt.Errorf("-duration must be positive")
	case o.ramp < 0:
		return fmt.Errorf("-ramp must not be negative")
	}
	return nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "rtmp-bench:", err)
	os.Exit(1)
}

// bitrateFlag is a bit rate such as 4000000, 2500k or 4M.
type bitrateFlag int

func (b *bitrateFlag) String() string { return strconv.Itoa(int(*b)) }

func (b *bitrateFlag) Set(s string) error {
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		mult, s = 1e3, s[:len(s)-1]
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult, s = 1e6, s[:len(s)-1]
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 {
		return fmt.Errorf("not a bit rate: %q", s)
	}
	*b = bitrateFlag(v * mult)
	return nil
}
