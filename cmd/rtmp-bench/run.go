package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Phases of a run, read by publishers on every frame.
const (
	phaseWarmup int32 = iota // connecting and settling; frames are not measured
	phaseMeasure
	phaseDrain // the window has closed; players catch up
)

// options are the command-line settings of one run.
type options struct {
	url        string
	players    int
	stalled    int
	idle       int
	publishers int
	duration   time.Duration
	warmup     time.Duration
	drain      time.Duration
	bitrate    int
	fps        float64
	gop        time.Duration
	chunkSize  uint32
	pid        int
	ramp       float64
	vary       string
	timeout    time.Duration
	label      string
	scenario   string
	// progress receives one line per step of the run; nil discards them.
	progress io.Writer
}

// run is the state shared by the publishers and players of one run.
type run struct {
	opts      options
	addr      string
	app, key  string
	timeout   time.Duration
	chunkSize uint32
	bitrate   int
	shape     streamShape
	start     time.Time // the monotonic origin of stamps

	phase   atomic.Int32
	closing atomic.Bool // connections are being closed on purpose
}

func (r *run) logf(format string, args ...any) {
	if r.opts.progress != nil {
		fmt.Fprintf(r.opts.progress, "rtmp-bench: %6.1fs "+format+"\n", append([]any{time.Since(r.start).Seconds()}, args...)...)
	}
}

// now is the time since the tool started, the clock of the stamps.
func (r *run) now() int64 { return int64(time.Since(r.start)) }

// parseURL splits rtmp://host[:port]/app/key.
func parseURL(s string) (addr, app, key string, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", "", "", err
	}
	if u.Scheme != "rtmp" {
		return "", "", "", fmt.Errorf("url %q: scheme must be rtmp", s)
	}
	addr = u.Host
	if u.Port() == "" {
		addr += ":1935"
	}
	app, key, _ = strings.Cut(strings.Trim(u.Path, "/"), "/")
	if app == "" || key == "" {
		return "", "", "", fmt.Errorf("url %q: want rtmp://host:port/app/key", s)
	}
	return addr, app, key, nil
}

// streamPath names stream number suffix: the key or the app gets the suffix,
// depending on which of the two tells streams apart on the target server.
func (r *run) streamPath(suffix string) (app, key string) {
	if suffix == "" {
		return r.app, r.key
	}
	if r.opts.vary == "app" {
		return r.app + "-" + suffix, r.key
	}
	return r.app, r.key + "-" + suffix
}

// execute runs the configured scenario and reports on it. ctx ends the
// measurement early (Ctrl-C).
func execute(ctx context.Context, opts options) (*report, error) {
	addr, app, key, err := parseURL(opts.url)
	if err != nil {
		return nil, err
	}
	r := &run{
		opts: opts, addr: addr, app: app, key: key,
		timeout: opts.timeout, chunkSize: opts.chunkSize, bitrate: opts.bitrate,
		shape: newStreamShape(opts.bitrate, opts.fps, opts.gop),
		start: time.Now(),
	}
	rep := newReport(opts)
	sample := func() *procSample {
		if opts.pid == 0 {
			return nil
		}
		s, err := readProc(opts.pid)
		if err != nil {
			rep.Warnings = append(rep.Warnings, err.Error())
			return nil
		}
		return &s
	}

	streamCtx, stopStreams := context.WithCancel(context.Background())
	defer stopStreams()
	var wg sync.WaitGroup
	var everyone []*player
	defer func() {
		r.closing.Store(true)
		stopStreams()
		for _, p := range everyone {
			if c := p.conn.Load(); c != nil {
				c.Close()
			}
		}
		wg.Wait()
	}()

	// Idle players first, so their memory is measured on its own.
	if opts.idle > 0 {
		before := sample()
		idleApp, idleKey := r.streamPath("idle")
		ps := startPlayers(r, &wg, opts.idle, idle, idleApp, idleKey, nil)
		everyone = append(everyone, ps...)
		r.logf("%d idle players connected", connected(ps))
		if !sleepCtx(ctx, opts.warmup) {
			return nil, ctx.Err()
		}
		rep.addIdle(ps, before, sample())
	}

	var pubs []*publisher
	var readers, stalls []*player
	switch {
	case opts.publishers > 0:
		for i := range opts.publishers {
			a, k := r.streamPath(fmt.Sprintf("p%d", i))
			pubs = append(pubs, newPublisher(r, a, k))
		}
		startPublishers(streamCtx, r, &wg, pubs)
		r.logf("%d publishers started", started(pubs))
	case opts.players+opts.stalled > 0:
		pub := newPublisher(r, app, key)
		pubs = append(pubs, pub)
		startPublishers(streamCtx, r, &wg, pubs)
		if pub.startErr != nil {
			return nil, fmt.Errorf("publisher: %w", pub.startErr)
		}
		r.logf("publishing %s/%s", app, key)
		readers = startPlayers(r, &wg, opts.players, reading, app, key, pub)
		stalls = startPlayers(r, &wg, opts.stalled, stalled, app, key, pub)
		r.logf("%d/%d players and %d/%d stalled players playing", connected(readers), len(readers), connected(stalls), len(stalls))
		everyone = append(everyone, readers...)
		everyone = append(everyone, stalls...)
	}

	if len(pubs) > 0 {
		if !sleepCtx(ctx, opts.warmup) {
			return nil, ctx.Err()
		}
		r.logf("measuring for %s", opts.duration)
		r.phase.Store(phaseMeasure)
		srvStart, toolStart, m0, t0 := sample(), selfCPU(), readMachine(), time.Now()
		sleepCtx(ctx, opts.duration)
		r.phase.Store(phaseDrain)
		srvEnd, toolEnd, m1, t1 := sample(), selfCPU(), readMachine(), time.Now()
		rep.setWindow(t1.Sub(t0), srvStart, srvEnd, toolEnd-toolStart, m0, m1)

		deadline := time.Now().Add(opts.drain)
		for time.Now().Before(deadline) && slices.ContainsFunc(readers, func(p *player) bool { return !p.done.Load() }) {
			time.Sleep(20 * time.Millisecond)
		}
		for _, p := range stalls {
			rep.addStalledState(p.stalledState())
		}
		r.logf("done")
	}

	r.closing.Store(true)
	stopStreams()
	for _, p := range everyone {
		if c := p.conn.Load(); c != nil {
			c.Close()
		}
	}
	wg.Wait()
	everyone = nil
	rep.addPublishers(pubs)
	if len(readers) > 0 || len(stalls) > 0 {
		rep.addPlayers(readers, stalls, pubs[0])
	}
	rep.finish(opts.pid)
	return rep, nil
}

func connected(ps []*player) int {
	n := 0
	for _, p := range ps {
		if p.conn.Load() != nil {
			n++
		}
	}
	return n
}

func started(pubs []*publisher) int {
	n := 0
	for _, p := range pubs {
		if p.startErr == nil {
			n++
		}
	}
	return n
}

// startPublishers starts pubs at the ramp rate and returns once each has
// started publishing or failed.
func startPublishers(ctx context.Context, r *run, wg *sync.WaitGroup, pubs []*publisher) {
	var ready sync.WaitGroup
	pace := newPacer(r.opts.ramp)
	for _, p := range pubs {
		pace.wait()
		ch := make(chan struct{})
		ready.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stream(ctx, ch)
		}()
		go func() {
			<-ch
			ready.Done()
		}()
	}
	ready.Wait()
}

// startPlayers starts n players at the ramp rate and returns once each has
// been answered Play or has failed.
func startPlayers(r *run, wg *sync.WaitGroup, n int, kind playerKind, app, key string, pub *publisher) []*player {
	ps := make([]*player, n)
	var setup sync.WaitGroup
	pace := newPacer(r.opts.ramp)
	for i := range ps {
		p := &player{id: i, kind: kind, app: app, key: key, pub: pub}
		ps[i] = p
		pace.wait()
		setup.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.play(r, setup.Done)
		}()
	}
	setup.Wait()
	return ps
}

// pacer spaces out connection attempts: perSecond of them a second, or all
// at once when perSecond is 0.
type pacer struct {
	interval time.Duration
	next     time.Time
}

func newPacer(perSecond float64) *pacer {
	p := &pacer{next: time.Now()}
	if perSecond > 0 {
		p.interval = time.Duration(float64(time.Second) / perSecond)
	}
	return p
}

func (p *pacer) wait() {
	if p.interval == 0 {
		return
	}
	if d := time.Until(p.next); d > 0 {
		time.Sleep(d)
	}
	p.next = p.next.Add(p.interval)
}

// sleepCtx sleeps for d; it reports false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// errKind names an error without the addresses that make every one unique.
func errKind(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed by server (EOF)"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by server"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe (closed by server)"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return err.Error()
}
