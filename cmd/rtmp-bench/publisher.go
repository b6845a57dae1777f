package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"sync/atomic"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// publisher sends one synthetic real-time stream. Its counters are written
// by its own goroutine and read once that goroutine has ended, except
// lastMeasured, which players read while it runs.
type publisher struct {
	run      *run
	app, key string
	shape    streamShape

	// lastMeasured is the sequence number of the last frame sent inside the
	// measurement window; MaxUint64 until the window has closed.
	lastMeasured atomic.Uint64

	sentMsgs  uint64        // frames sent inside the window
	sentBytes uint64        // their payload bytes
	maxLag    time.Duration // how late the worst frame of the window went out
	err       error         // why it stopped early, nil when told to stop
	// startErr is why it could not publish; written before ready is closed.
	startErr error
}

func newPublisher(r *run, app, key string) *publisher {
	p := &publisher{run: r, app: app, key: key, shape: r.shape}
	p.lastMeasured.Store(math.MaxUint64)
	return p
}

// connect dials and publishes; the stream has started when it returns nil.
func (p *publisher) connect() (*client.Conn, error) {
	c, err := client.Dial(p.run.addr, nil, p.run.timeout)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(p.run.timeout))
	if err := p.handshake(c); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

func (p *publisher) handshake(c *client.Conn) error {
	if err := c.Connect(p.app); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if _, err := c.CreateStream(); err != nil {
		return fmt.Errorf("createStream: %w", err)
	}
	if err := c.SetChunkSize(p.run.chunkSize); err != nil {
		return err
	}
	st, err := c.Publish(p.key)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if st.Code != "NetStream.Publish.Start" {
		return fmt.Errorf("publish: %s", st.Code)
	}
	return nil
}

// stream sends frames on schedule until ctx is done. ready is closed once
// publishing has started (or failed, with p.startErr set).
func (p *publisher) stream(ctx context.Context, ready chan<- struct{}) {
	c, err := p.connect()
	if err != nil {
		p.startErr = err
		close(ready)
		return
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	// The server's pings and acknowledgements are read and dropped, so
	// its writes to us never block; a publisher is judged on what it sends.
	go func() { _, _ = io.Copy(io.Discard, c.NetConn()) }()
	close(ready)
	if err := p.send(ctx, c); err != nil && ctx.Err() == nil {
		p.err = err
	}
}

func (p *publisher) send(ctx context.Context, c *client.Conn) error {
	meta, err := amf.AppendAMF0All(nil, "@setDataFrame", "onMetaData", amf.ECMAArray{
		{Key: "width", Value: 1280.0},
		{Key: "height", Value: 720.0},
		{Key: "framerate", Value: p.shape.fps},
		{Key: "videocodecid", Value: 7.0},
		{Key: "videodatarate", Value: float64(p.run.bitrate) / 1000},
		{Key: "audiocodecid", Value: 10.0},
		{Key: "audiosamplerate", Value: float64(aacSampleRate)},
		{Key: "stereo", Value: true},
		{Key: "encoder", Value: "rtmp-bench"},
	})
	if err != nil {
		return err
	}
	if err := c.WriteMedia(message.TypeDataAMF0, 0, meta); err != nil {
		return err
	}
	if err := c.WriteMedia(message.TypeVideo, 0, avcSequenceHeader()); err != nil {
		return err
	}
	if err := c.WriteMedia(message.TypeAudio, 0, aacSequenceHeader()); err != nil {
		return err
	}

	frames := newFrameSet(p.shape)
	start := time.Now()
	var video, audio int
	var seq, lastMeasured uint64
	measuring := false
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		tv := time.Duration(float64(video) / p.shape.fps * float64(time.Second))
		ta := time.Duration(float64(audio) / p.shape.audioPerSec * float64(time.Second))
		at, typ, payload := tv, message.TypeVideo, frames.inter
		if ta < tv {
			at, typ, payload = ta, message.TypeAudio, frames.audio
		} else if video%p.shape.framesPerGOP == 0 {
			payload = frames.keyframe
		}
		if wait := time.Until(start.Add(at)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return nil
			}
		}

		switch p.run.phase.Load() {
		case phaseMeasure:
			measuring = true
		case phaseDrain:
			if measuring {
				p.lastMeasured.Store(lastMeasured)
				measuring = false
			}
		}
		seq++
		var flags byte
		if measuring {
			flags = stampMeasured
			lastMeasured = seq
			p.sentMsgs++
			p.sentBytes += uint64(len(payload))
			p.maxLag = max(p.maxLag, time.Since(start.Add(at)))
		}
		stampAt := audioStampAt
		if typ == message.TypeVideo {
			stampAt = videoStampAt
			video++
		} else {
			audio++
		}
		putStamp(payload[stampAt:], flags, seq, p.run.now())
		if err := c.WriteMedia(typ, uint32(at/time.Millisecond), payload); err != nil {
			return err
		}
	}
}
