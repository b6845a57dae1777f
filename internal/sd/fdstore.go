package sd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/coreos/go-systemd/v22/activation"
	"golang.org/x/sys/unix"
)

// The file descriptor store (FileDescriptorStoreMax= in the unit): systemd
// keeps the descriptors a service sends it with FDSTORE=1 while the service
// restarts, and passes them to the next process with LISTEN_FDS and
// LISTEN_FDNAMES, after the sockets of its socket units. A stored
// descriptor stays open in systemd until the service removes it
// (FDSTOREREMOVE=1 with its name), it reports POLLHUP or POLLERR (a closed
// connection; unless stored with FDPOLL=0), or the unit stops for good.

// MaxStoreFDsPerMessage is the number of descriptors one sd_notify message
// may carry: the kernel's SCM_MAX_FD. StoreFiles splits longer lists.
const MaxStoreFDsPerMessage = 253

// maxFDNameLen is systemd's FDNAME_MAX.
const maxFDNameLen = 255

// Errors of the file descriptor store.
var (
	ErrNoNotifySocket = errors.New("sd: no NOTIFY_SOCKET: not started by systemd")
	ErrBadFDName      = errors.New("sd: bad file descriptor name")
)

// checkFDName applies systemd's rule for FDNAME: 1 to 255 printable ASCII
// characters other than ':'.
func checkFDName(name string) error {
	if name == "" || len(name) > maxFDNameLen {
		return fmt.Errorf("%w: %d bytes, want 1..%d", ErrBadFDName, len(name), maxFDNameLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return fmt.Errorf("%w: byte %#x at %d (printable ASCII but ':' and space only)", ErrBadFDName, c, i)
		}
	}
	return nil
}

// StoreOptions changes how StoreFiles stores descriptors.
type StoreOptions struct {
	// NoPoll stores the descriptors with FDPOLL=0: systemd does not drop
	// them when they report POLLHUP or POLLERR. For descriptors that are not
	// connections, such as a memfd.
	NoPoll bool
}

// StoreFiles sends fds to systemd's file descriptor store under name
// ("FDSTORE=1", "FDNAME=name", the descriptors as SCM_RIGHTS), in messages
// of at most MaxStoreFDsPerMessage descriptors. Several messages may use
// one name: the next process finds every descriptor under it. The caller
// keeps ownership of fds and may close them once StoreFiles returns; systemd
// holds its own copies.
//
// It returns ErrNoNotifySocket when the process was not started with
// NOTIFY_SOCKET. A nil error means that the kernel delivered the messages;
// whether systemd kept the descriptors depends on the unit's
// FileDescriptorStoreMax= (systemd closes those beyond it and logs so).
func (n *Notifier) StoreFiles(name string, fds []int, opts StoreOptions) error {
	if n.addr == nil {
		return ErrNoNotifySocket
	}
	if err := checkFDName(name); err != nil {
		return err
	}
	state := "FDSTORE=1\nFDNAME=" + name
	if opts.NoPoll {
		state += "\nFDPOLL=0"
	}
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd: notify: %w", err)
	}
	defer conn.Close()
	raw, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("sd: notify: %w", err)
	}
	for len(fds) > 0 {
		batch := fds[:min(len(fds), MaxStoreFDsPerMessage)]
		fds = fds[len(batch):]
		if err := sendRights(raw, []byte(state), batch); err != nil {
			return fmt.Errorf("sd: storing %d descriptors as %q: %w", len(batch), name, err)
		}
	}
	return nil
}

// sendRights sends one datagram holding state and fds as SCM_RIGHTS on the
// connected socket raw, waiting while its buffer is full.
func sendRights(raw syscall.RawConn, state []byte, fds []int) error {
	oob := unix.UnixRights(fds...)
	var sendErr error
	err := raw.Write(func(fd uintptr) bool {
		sendErr = unix.Sendmsg(int(fd), state, oob, nil, 0)
		return sendErr != unix.EAGAIN
	})
	if err != nil {
		return err
	}
	return sendErr
}

// RemoveStored asks systemd to close every stored descriptor named name
// ("FDSTOREREMOVE=1", "FDNAME=name"). A process that adopts stored
// descriptors removes them, or systemd keeps them open (and so the
// connections they are) after the process has closed its copies.
func (n *Notifier) RemoveStored(name string) error {
	if n.addr == nil {
		return ErrNoNotifySocket
	}
	if err := checkFDName(name); err != nil {
		return err
	}
	return n.send("FDSTOREREMOVE=1\nFDNAME=" + name)
}

// StoreMax returns the unit's FileDescriptorStoreMax= as the process sees
// it: the FDSTORE variable, which systemd 254 and later set (and the unit
// sets for older versions), or 0 when it is unset or malformed. It reads
// the environment once per call; the daemon calls it at start.
func StoreMax() int {
	v, err := strconv.Atoi(os.Getenv("FDSTORE"))
	if err != nil || v < 0 {
		return 0
	}
	return v
}

// Passed is what systemd passed the process at start: the listening sockets
// of its socket units, by name, and the descriptors of its file descriptor
// store, which Passed does not interpret.
type Passed struct {
	// Listeners holds the socket units' sockets by FileDescriptorName=.
	// The caller owns and closes them.
	Listeners map[string]net.Listener
	// Stored holds the descriptors whose name starts with the prefix given
	// to ListenersAndStore, in the order systemd passed them; each file's
	// Name() is its FDNAME. The caller owns and closes them.
	Stored []*os.File
}

// ListenersAndStore is Listeners for a service that also uses the file
// descriptor store: the descriptors whose name starts with storePrefix go
// to Passed.Stored unchecked; every other one must be a listening stream
// socket with one of the allowed names, as Listeners requires. On error,
// every passed descriptor is closed.
func ListenersAndStore(storePrefix string, allowed ...string) (Passed, error) {
	files := activation.Files(true)
	p := Passed{Listeners: make(map[string]net.Listener, len(files))}
	var err error
	for i, f := range files {
		if storePrefix != "" && strings.HasPrefix(f.Name(), storePrefix) {
			p.Stored = append(p.Stored, f)
			continue
		}
		if err == nil {
			err = addListener(p.Listeners, f, listenFdsStart+i, allowed)
		}
		f.Close()
	}
	if err != nil {
		p.Close()
		return Passed{}, err
	}
	return p, nil
}

// Close closes every listener and stored file of p.
func (p Passed) Close() {
	for _, ln := range p.Listeners {
		ln.Close()
	}
	for _, f := range p.Stored {
		f.Close()
	}
}
