package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtmp-server/rtmp-server/internal/sd"
	"github.com/rtmp-server/rtmp-server/internal/server"
)

// Names of what a process stores in systemd's file descriptor store for
// the next one (FDNAME=): the connections and the state (a memfd).
// ListenersAndStore takes every descriptor whose name starts with
// storePrefix.
const (
	storePrefix = "rtmp-handover"
	storeConns  = "rtmp-handover"
	storeState  = "rtmp-handover-state"
)

// restartQueryTimeout bounds asking systemd whether this stop is a restart.
const restartQueryTimeout = 2 * time.Second

// handOver hands the live sessions to the next process when systemd is
// restarting the service and its file descriptor store can hold them.
// Otherwise, or when storing fails, it leaves them to shutdown.
func (d *daemon) handOver() {
	storeMax := sd.StoreMax()
	if !d.notifier.Enabled() || storeMax == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), restartQueryTimeout)
	restart, err := sd.RestartPending(ctx)
	cancel()
	if err != nil {
		d.log.Info("sessions not handed over: cannot tell a restart from a stop", "err", err)
		return
	}
	if !restart {
		return
	}
	start := time.Now()
	ho, err := d.srv.HandOver(context.Background())
	if errors.Is(err, server.ErrHandOverAdmission) {
		d.log.Info("sessions not handed over", "reason", err)
		return
	}
	if err != nil {
		d.log.Error("sessions not handed over", "err", err)
		return
	}
	if ho.Sessions+1 > storeMax {
		d.log.Warn("sessions not handed over: more than the file descriptor store holds",
			"sessions", ho.Sessions, "FileDescriptorStoreMax", storeMax)
		ho.Abort()
		return
	}
	msg := fmt.Sprintf("handing over %d sessions (%d publishers, %d players)", ho.Sessions, ho.Publishers, ho.Players)
	_ = d.notifier.Status(msg)
	if err := d.storeHandOver(ho.Files, ho.State); err != nil {
		d.log.Error("sessions not handed over", "err", err)
		_ = d.notifier.RemoveStored(storeConns)
		_ = d.notifier.RemoveStored(storeState)
		ho.Abort()
		return
	}
	ho.Done()
	if d.fleet != nil {
		// The next process of this box goes on with the registry entry
		// and the handed-over claims (which the fleet no longer releases).
		d.fleet.KeepEntry()
	}
	d.log.Info(msg, "sessions", ho.Sessions, "publishers", ho.Publishers, "players", ho.Players,
		"state_bytes", len(ho.State), "duration", time.Since(start).Round(time.Microsecond).String())
}

// storeHandOver sends the connections and the state to the store.
func (d *daemon) storeHandOver(files []*os.File, state []byte) error {
	fd, err := unix.MemfdCreate(storeState, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return fmt.Errorf("memfd_create: %w", err)
	}
	memfd := os.NewFile(uintptr(fd), storeState)
	defer memfd.Close()
	if _, err := memfd.Write(state); err != nil {
		return fmt.Errorf("writing the state: %w", err)
	}
	_, _ = unix.FcntlInt(memfd.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL)
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	if err := d.notifier.StoreFiles(storeConns, fds, sd.StoreOptions{}); err != nil {
		return err
	}
	return d.notifier.StoreFiles(storeState, []int{int(memfd.Fd())}, sd.StoreOptions{NoPoll: true})
}

// adopt carries on the sessions the previous process stored, then removes
// them from the store (systemd would otherwise keep every connection open
// after this process closed it).
func (d *daemon) adopt(stored []*os.File) {
	start := time.Now()
	var state *os.File
	var conns []*os.File
	for _, f := range stored {
		switch f.Name() {
		case storeState:
			if state != nil {
				_ = state.Close()
			}
			state = f
		case storeConns:
			conns = append(conns, f)
		default:
			d.log.Warn("unknown descriptor in the file descriptor store; closed", "name", f.Name())
			_ = f.Close()
		}
	}
	var src io.Reader = eofReader{}
	if state != nil {
		if fi, err := state.Stat(); err == nil {
			src = io.NewSectionReader(state, 0, fi.Size())
		}
	} else if len(conns) > 0 {
		d.log.Warn("stored connections without their state; closing them")
	}
	res := d.srv.Adopt(src, conns)
	if state != nil {
		_ = state.Close()
	}
	for _, name := range []string{storeConns, storeState} {
		if err := d.notifier.RemoveStored(name); err != nil {
			d.log.Warn("could not empty the file descriptor store", "name", name, "err", err)
		}
	}
	msg := fmt.Sprintf("resumed %d sessions (%d publishers, %d players) in %d ms",
		res.Sessions, res.Publishers, res.Players, res.Since.Milliseconds())
	d.log.Info(msg, "sessions", res.Sessions, "publishers", res.Publishers, "players", res.Players,
		"failed", res.Failed, "since_saved", res.Since.Round(time.Microsecond).String(),
		"duration", time.Since(start).Round(time.Microsecond).String())
	_ = d.notifier.Status(msg)
	d.resumed = resumedLine{text: msg, at: time.Now()}
}

// resumedStatusFor is how long STATUS= starts with what adopt resumed.
const resumedStatusFor = time.Minute

// resumedLine is adopt's log line and when it was written; set before the
// status reporter starts.
type resumedLine struct {
	text string
	at   time.Time
}

// resumedStatus is the start of STATUS=: what adopt resumed, for
// resumedStatusFor after it did.
func (d *daemon) resumedStatus(now time.Time) string {
	if d.resumed.text == "" || now.Sub(d.resumed.at) > resumedStatusFor {
		return ""
	}
	return d.resumed.text + "; "
}

// eofReader is an empty state: Adopt refuses it and closes the connections.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
