// Package sd is the glue between rtmp-server and systemd: the listening
// sockets systemd hands over (socket activation) and the sd_notify messages
// that tell systemd the service is ready, reloading, stopping or still alive
// (watchdog).
//
// With config, it is one of the two places that read the process
// environment: LISTEN_* once in Listeners, NOTIFY_SOCKET and WATCHDOG_* once
// in NewNotifier.
package sd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/coreos/go-systemd/v22/activation"
)

// Errors returned by Listeners, wrapped with the name of the socket at fault.
var (
	ErrUnknownSocket   = errors.New("sd: unknown socket name")
	ErrNotStream       = errors.New("sd: not a listening stream socket")
	ErrDuplicateSocket = errors.New("sd: more than one socket with the same name")
)

// Listeners returns the listening sockets that systemd passed to the process
// (LISTEN_FDS, LISTEN_FDNAMES), keyed by their FileDescriptorName=.
//
// Every socket must carry one of the allowed names and be a listening stream
// socket; otherwise Listeners closes all of them and returns an error that
// names the offending socket. A name may appear only once. When the process
// was not socket-activated, it returns an empty map and a nil error.
//
// Listeners takes the sockets only once: it unsets LISTEN_PID, LISTEN_FDS and
// LISTEN_FDNAMES, so a second call (or a child process) finds none. The
// caller owns the returned listeners and closes them.
func Listeners(allowed ...string) (map[string]net.Listener, error) {
	files := activation.Files(true)
	listeners := make(map[string]net.Listener, len(files))
	var err error
	for i, f := range files {
		if err == nil {
			err = addListener(listeners, f, listenFdsStart+i, allowed)
		}
		f.Close()
	}
	if err != nil {
		for _, ln := range listeners {
			ln.Close()
		}
		return nil, err
	}
	return listeners, nil
}

// listenFdsStart is the first descriptor systemd passes (SD_LISTEN_FDS_START).
const listenFdsStart = 3

// addListener checks one passed socket, descriptor number fd, and adds a
// listener for it to listeners. The caller closes f.
func addListener(listeners map[string]net.Listener, f *os.File, fd int, allowed []string) error {
	name := f.Name()
	if !slices.Contains(allowed, name) {
		return fmt.Errorf("%w: %q (fd %d); want one of %s", ErrUnknownSocket, name, fd, strings.Join(allowed, ", "))
	}
	if _, dup := listeners[name]; dup {
		return fmt.Errorf("%w: %q", ErrDuplicateSocket, name)
	}
	if err := checkListeningStream(f); err != nil {
		return fmt.Errorf("%w: %q (fd %d): %v", ErrNotStream, name, fd, err)
	}
	ln, err := net.FileListener(f)
	if err != nil {
		return fmt.Errorf("sd: socket %q (fd %d): %w", name, fd, err)
	}
	listeners[name] = ln
	return nil
}

// checkListeningStream reports an error unless f is a SOCK_STREAM socket in
// the listening state.
func checkListeningStream(f *os.File) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var sockType, accepting int
	var sockErr error
	err = raw.Control(func(fd uintptr) {
		sockType, sockErr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TYPE)
		if sockErr == nil {
			accepting, sockErr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ACCEPTCONN)
		}
	})
	if err != nil {
		return err
	}
	if sockErr != nil {
		return sockErr
	}
	switch sockType {
	case syscall.SOCK_STREAM:
	case syscall.SOCK_DGRAM:
		return errors.New("it is a datagram socket")
	case syscall.SOCK_SEQPACKET:
		return errors.New("it is a seqpacket socket")
	default:
		return fmt.Errorf("it has socket type %d", sockType)
	}
	if accepting == 0 {
		return errors.New("it is not listening")
	}
	return nil
}
