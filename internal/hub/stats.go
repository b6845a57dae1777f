package hub

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/media"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// Measurement of a publication, for monitoring. The publisher's Write
// records each message in a publication's streamStats: a few counters and
// a ring of one-second buckets, under the stream's lock it already holds,
// without allocating. Snapshots (Hub.StreamStats) turn them into plain
// values when someone asks.
const (
	// StatsWindow is the period the measured rates cover.
	StatsWindow = 5 * time.Second
	// StatsHistory is how many seconds of bitrate a snapshot carries.
	StatsHistory = 60
	// TimestampJump is the gap between consecutive timestamps of one track
	// that counts as a jump.
	TimestampJump = 3 * time.Second
	// maxEncoderLen bounds the encoder name taken from metadata.
	maxEncoderLen = 64
	// statsBuckets is the size of the ring: the history, the current
	// second, and one to spare.
	statsBuckets = StatsHistory + 2
)

// secondBucket counts the media of one wall-clock second.
type secondBucket struct {
	sec        int64 // Unix second counted; other values are stale
	videoBytes uint64
	audioBytes uint64
	frames     uint32 // video frames (not codec headers)
	kfSumMS    uint64 // sum of keyframe intervals ending in this second, in ms
	kfCount    uint32 // number of those intervals
}

// track is what is known of a publication's audio or video track.
type track struct {
	seen   bool
	lastTS uint32
	codec  uint8   // classic FLV codec ID or sound format; 0 with fourCC set
	fourCC [4]byte // Enhanced RTMP FourCC; zero for classic payloads
}

// streamStats measures one publication. Guarded by the stream's mu.
type streamStats struct {
	messagesIn uint64
	bytesIn    uint64
	videoBytes uint64
	audioBytes uint64
	frames     uint64
	keyframes  uint64
	backwards  uint64 // timestamps lower than the track's previous one
	jumps      uint64 // timestamps more than TimestampJump after the previous one

	video, audio track
	lastKeyTS    uint32 // timestamp of the last keyframe
	haveKey      bool
	lastKeyGapMS uint32 // the last keyframe interval, in ms

	buckets [statsBuckets]secondBucket
}

// bucket returns the bucket of the second sec, emptied if it held an older one.
func (st *streamStats) bucket(sec int64) *secondBucket {
	b := &st.buckets[uint64(sec)%statsBuckets]
	if b.sec != sec {
		*b = secondBucket{sec: sec}
	}
	return b
}

// record counts one message written at now. It is called before the
// stream's caches see the packet.
func (st *streamStats) record(pkt *Packet, payload []byte, now time.Time) {
	n := uint64(len(payload))
	st.messagesIn++
	st.bytesIn += n
	switch pkt.Type {
	case message.TypeVideo:
		st.videoBytes += n
		b := st.bucket(now.Unix())
		b.videoBytes += n
		st.video.check(st, pkt.Timestamp)
		st.video.codecOf(payload, true)
		if pkt.Kind != media.Frame && pkt.Kind != media.Keyframe {
			return
		}
		st.frames++
		b.frames++
		if pkt.Kind != media.Keyframe {
			return
		}
		st.keyframes++
		if st.haveKey && pkt.Timestamp > st.lastKeyTS {
			gap := pkt.Timestamp - st.lastKeyTS
			st.lastKeyGapMS = gap
			b.kfSumMS += uint64(gap)
			b.kfCount++
		}
		st.lastKeyTS, st.haveKey = pkt.Timestamp, true
	case message.TypeAudio:
		st.audioBytes += n
		st.bucket(now.Unix()).audioBytes += n
		st.audio.check(st, pkt.Timestamp)
		st.audio.codecOf(payload, false)
	}
}

// check counts a timestamp anomaly of the track and records ts.
func (t *track) check(st *streamStats, ts uint32) {
	if t.seen {
		switch {
		case ts < t.lastTS:
			st.backwards++
		case ts-t.lastTS > uint32(TimestampJump/time.Millisecond):
			st.jumps++
		}
	}
	t.seen, t.lastTS = true, ts
}

// codecOf records the codec a payload names, without allocating.
func (t *track) codecOf(p []byte, video bool) {
	if len(p) == 0 {
		return
	}
	var enhanced, multitrack bool
	if video {
		enhanced, multitrack = p[0]&0x80 != 0, p[0]&0x0F == 6
	} else {
		enhanced, multitrack = p[0]>>4 == 9, p[0]&0x0F == 5
	}
	if !enhanced {
		if video {
			t.codec = p[0] & 0x0F
		} else {
			t.codec = p[0] >> 4
		}
		t.fourCC = [4]byte{}
		return
	}
	at := 1
	if multitrack {
		at = 2
	}
	if len(p) >= at+4 {
		t.codec = 0
		copy(t.fourCC[:], p[at:at+4])
	}
}

// Codec names a track's codec: a classic FLV codec ID (video) or sound
// format (audio), or an Enhanced RTMP FourCC.
type Codec struct {
	// ID is the classic codec ID or sound format; 0 with FourCC set by an
	// Enhanced RTMP payload.
	ID int
	// FourCC is the Enhanced RTMP FourCC, or the usual FourCC of a classic
	// codec ("avc1", "mp4a"); empty when none is known.
	FourCC string
}

func (t *track) snapshot(video bool) *Codec {
	if !t.seen {
		return nil
	}
	if t.fourCC != [4]byte{} {
		return &Codec{FourCC: printable(string(t.fourCC[:]), 4)}
	}
	c := &Codec{ID: int(t.codec)}
	switch {
	case video && t.codec == 7:
		c.FourCC = "avc1"
	case video && t.codec == 12:
		c.FourCC = "hvc1"
	case !video && t.codec == 10:
		c.FourCC = "mp4a"
	case !video && (t.codec == 2 || t.codec == 14):
		c.FourCC = ".mp3"
	}
	return c
}

// Metadata is what the publisher declared in onMetaData.
type Metadata struct {
	Width     float64 // pixels; 0 if not given
	Height    float64
	FrameRate float64 // frames per second
	// VideoDataRate and AudioDataRate are the declared bitrates in kbit/s.
	VideoDataRate float64
	AudioDataRate float64
	// VideoCodecID and AudioCodecID are as declared: a number or a FourCC.
	VideoCodecID string
	AudioCodecID string
	// Encoder is the encoder's name, bounded and with unprintable
	// characters replaced.
	Encoder string
}

// PlayerStats describes one player of a stream.
type PlayerStats struct {
	SessionID uint64
	Addr      netip.Addr // the zero Addr when unknown
	Since     time.Time  // when Play accepted it
	Playing   bool       // false while waiting for a publisher
	// BytesSent counts the media bytes handed to the player's connection.
	BytesSent uint64
	// Skips counts the times the player fell behind and skipped to a keyframe.
	Skips uint64
}

// StreamStats is a snapshot of one channel. It names the channel and the
// publication's stream ID, never a stream key.
type StreamStats struct {
	Channel   string
	Published bool // false for a channel with only waiting players
	// The fields below, up to Players, describe the publication and are
	// zero when there is none.
	StreamID      string
	SessionID     uint64
	PublisherAddr netip.Addr
	// FlashVer is the publisher's flashVer from connect, bounded and
	// printable; empty when unknown.
	FlashVer string
	Started  time.Time

	MessagesIn   uint64
	BytesIn      uint64
	VideoBytesIn uint64
	AudioBytesIn uint64
	VideoFrames  uint64
	Keyframes    uint64

	VideoCodec *Codec // nil before any video
	AudioCodec *Codec // nil before any audio
	Metadata   *Metadata

	// Measured over the last StatsWindow (or since the start, if later):
	// bitrates in bit/s, frame rate in frames/s; KeyframeInterval is the
	// mean interval between keyframes ending in the window, or the last
	// interval seen when none does (0 before two keyframes).
	VideoBitrate     float64
	AudioBitrate     float64
	FrameRate        float64
	KeyframeInterval time.Duration
	// AVDrift is the last video timestamp minus the last audio one.
	AVDrift time.Duration
	// TimestampsBackwards and TimestampJumps count anomalies of either track.
	TimestampsBackwards uint64
	TimestampJumps      uint64
	// BitrateHistory is the total bitrate (bit/s) of each of the last
	// complete seconds, oldest first, at most StatsHistory of them.
	BitrateHistory []float64

	GOPCacheBytes   int64
	GOPCachePackets int

	// PlayerCount and PlayerBytesSent sum up the players, and are set
	// even when Players is not (StreamTotals).
	PlayerCount     int
	PlayerBytesSent uint64
	// Players, sorted by the time they joined; nil from StreamTotals.
	Players []PlayerStats
}

// StreamStats returns a snapshot of every channel, sorted by channel.
func (h *Hub) StreamStats() []StreamStats { return h.streamStats(true) }

// StreamTotals is StreamStats without the list of players (only their
// count and the bytes sent to them), for a scrape of the metrics: with
// many players it costs a fraction of StreamStats.
func (h *Hub) StreamTotals() []StreamStats { return h.streamStats(false) }

func (h *Hub) streamStats(withPlayers bool) []StreamStats {
	h.mu.Lock()
	streams := make([]*Stream, 0, len(h.streams))
	for _, s := range h.streams {
		streams = append(streams, s)
	}
	h.mu.Unlock()
	out := make([]StreamStats, 0, len(streams))
	now := time.Now()
	for _, s := range streams {
		out = append(out, s.snapshot(now, withPlayers))
	}
	slices.SortFunc(out, func(a, b StreamStats) int { return strings.Compare(a.Channel, b.Channel) })
	return out
}

// StreamStatsOf returns the snapshot of one channel, if it exists.
func (h *Hub) StreamStatsOf(channel string) (StreamStats, bool) {
	h.mu.Lock()
	s := h.streams[channel]
	h.mu.Unlock()
	if s == nil {
		return StreamStats{}, false
	}
	return s.snapshot(time.Now(), true), true
}

// snapshot reads the stream; withPlayers lists its players too.
func (s *Stream) snapshot(now time.Time, withPlayers bool) StreamStats {
	out := StreamStats{Channel: s.channel}
	s.mu.Lock()
	players := make([]*Player, 0, len(s.players))
	var playing []bool
	var since []time.Time
	if withPlayers {
		playing = make([]bool, 0, len(s.players))
		since = make([]time.Time, 0, len(s.players))
	}
	for p := range s.players {
		players = append(players, p)
		if withPlayers {
			playing = append(playing, p.playing)
			since = append(since, p.since)
		}
	}
	pub := s.pub
	var st streamStats
	var meta *Packet
	if pub != nil {
		st = pub.stats
		meta = s.metadata
		out.GOPCacheBytes, out.GOPCachePackets = s.gopBytes, len(s.gop)
	}
	s.mu.Unlock()

	if pub != nil {
		out.Published = true
		out.StreamID = pub.StreamID
		out.SessionID = pub.SessionID()
		out.PublisherAddr = pub.ClientAddr()
		if f, ok := pub.conn.(interface{ FlashVer() string }); ok {
			out.FlashVer = printable(f.FlashVer(), maxEncoderLen)
		}
		out.Started = pub.started
		st.fill(&out, now, pub.started)
		if meta != nil {
			out.Metadata = parseMetadata(meta.payload)
		}
	}
	out.PlayerCount = len(players)
	if !withPlayers {
		for _, p := range players {
			sent, _ := p.Queue.Counters()
			out.PlayerBytesSent += sent
		}
		return out
	}
	out.Players = make([]PlayerStats, len(players))
	for i, p := range players {
		sent, skips := p.Queue.Counters()
		out.PlayerBytesSent += sent
		out.Players[i] = PlayerStats{
			SessionID: p.SessionID, Addr: p.Addr, Since: since[i], Playing: playing[i],
			BytesSent: sent, Skips: skips,
		}
	}
	slices.SortFunc(out.Players, func(a, b PlayerStats) int {
		return a.Since.Compare(b.Since)
	})
	return out
}

// fill sets out's measured fields from a copy of the stats.
func (st *streamStats) fill(out *StreamStats, now, started time.Time) {
	out.MessagesIn, out.BytesIn = st.messagesIn, st.bytesIn
	out.VideoBytesIn, out.AudioBytesIn = st.videoBytes, st.audioBytes
	out.VideoFrames, out.Keyframes = st.frames, st.keyframes
	out.TimestampsBackwards, out.TimestampJumps = st.backwards, st.jumps
	out.VideoCodec, out.AudioCodec = st.video.snapshot(true), st.audio.snapshot(false)
	if st.video.seen && st.audio.seen {
		out.AVDrift = time.Duration(int64(st.video.lastTS)-int64(st.audio.lastTS)) * time.Millisecond
	}

	// The window: the current second so far and the whole seconds before
	// it, StatsWindow in all at most, and not before the start.
	cur := now.Unix()
	first := cur - int64(StatsWindow/time.Second) + 1
	from := time.Unix(first, 0)
	if started.After(from) {
		from = started
	}
	span := now.Sub(from).Seconds()
	var video, audio, kfSum uint64
	var frames, kfCount uint32
	for _, b := range st.buckets {
		if b.sec >= first && b.sec <= cur {
			video += b.videoBytes
			audio += b.audioBytes
			frames += b.frames
			kfSum += b.kfSumMS
			kfCount += b.kfCount
		}
	}
	if span > 0.1 {
		out.VideoBitrate = float64(video*8) / span
		out.AudioBitrate = float64(audio*8) / span
		out.FrameRate = float64(frames) / span
	}
	switch {
	case kfCount > 0:
		out.KeyframeInterval = time.Duration(kfSum/uint64(kfCount)) * time.Millisecond
	default:
		out.KeyframeInterval = time.Duration(st.lastKeyGapMS) * time.Millisecond
	}

	// History: the complete seconds since the start, up to StatsHistory.
	oldest := max(cur-StatsHistory, started.Unix()+1)
	if oldest < cur {
		out.BitrateHistory = make([]float64, 0, cur-oldest)
		for sec := oldest; sec < cur; sec++ {
			b := st.buckets[uint64(sec)%statsBuckets]
			var bits float64
			if b.sec == sec {
				bits = float64((b.videoBytes + b.audioBytes) * 8)
			}
			out.BitrateHistory = append(out.BitrateHistory, bits)
		}
	}
}

// parseMetadata reads the publisher's onMetaData (as stored, with or
// without @setDataFrame); nil if it holds no properties.
func parseMetadata(payload []byte) *Metadata {
	values, _ := amf.DecodeAMF0All(payload) // what decoded before an error is used
	for _, v := range values {
		var get func(string) (any, bool)
		switch props := v.(type) {
		case amf.ECMAArray:
			get = props.Get
		case amf.Object:
			get = props.Get
		default:
			continue
		}
		m := &Metadata{}
		num := func(key string) float64 {
			if v, ok := get(key); ok {
				if f, ok := v.(float64); ok {
					return f
				}
			}
			return 0
		}
		str := func(key string) string {
			v, ok := get(key)
			if !ok {
				return ""
			}
			switch v := v.(type) {
			case string:
				return printable(v, maxEncoderLen)
			case float64:
				return strconv.FormatFloat(v, 'f', -1, 64)
			}
			return ""
		}
		m.Width, m.Height, m.FrameRate = num("width"), num("height"), num("framerate")
		m.VideoDataRate, m.AudioDataRate = num("videodatarate"), num("audiodatarate")
		m.VideoCodecID, m.AudioCodecID = str("videocodecid"), str("audiocodecid")
		m.Encoder = str("encoder")
		return m
	}
	return nil
}

// printable bounds s to max bytes and replaces what is not printable ASCII.
func printable(s string, max int) string {
	if len(s) > max {
		s = s[:max]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}
