package sd

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// helperEnv selects a helper role when the test binary is re-executed as the
// child of systemd-socket-activate (passed on with its -E option).
const helperEnv = "SD_TEST_HELPER"

func TestMain(m *testing.M) {
	switch role := os.Getenv(helperEnv); role {
	case "":
		os.Exit(m.Run())
	case "listeners":
		os.Exit(listenersHelper())
	case "store":
		os.Exit(storeHelper())
	default:
		fmt.Fprintf(os.Stderr, "unknown %s role %q\n", helperEnv, role)
		os.Exit(2)
	}
}

// helperDeadline bounds every wait in the helper process so that it never
// outlives a failed test.
const helperDeadline = 20 * time.Second

// listenersHelper runs in the socket-activated child. It calls Listeners and
// reports on stdout; for each listener it accepts one connection and writes
// the listener's name to it.
func listenersHelper() int {
	listeners, err := Listeners("rtmp", "rtmps")
	if err != nil {
		fmt.Printf("error: %v\n", err)
		return 0
	}
	for _, key := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		if v, ok := os.LookupEnv(key); ok {
			fmt.Printf("error: %s=%q still set after Listeners\n", key, v)
			return 1
		}
	}
	names := make([]string, 0, len(listeners))
	for name := range listeners {
		names = append(names, name)
	}
	slices.Sort(names)
	fmt.Printf("listeners: %s\n", strings.Join(names, ","))
	// Under a service manager (the packaging checks), report readiness too.
	if err := NewNotifier().Ready(); err != nil {
		fmt.Printf("error: %v\n", err)
		return 1
	}

	status := 0
	for _, name := range names {
		if err := serveName(listeners[name], name); err != nil {
			fmt.Printf("error: serving %s: %v\n", name, err)
			status = 1
		}
	}
	return status
}

// serveName accepts one connection on ln, writes name and a newline to it,
// and closes both.
func serveName(ln net.Listener, name string) error {
	defer ln.Close()
	deadline := time.Now().Add(helperDeadline)
	if tl, ok := ln.(*net.TCPListener); ok {
		if err := tl.SetDeadline(deadline); err != nil {
			return err
		}
	}
	conn, err := ln.Accept()
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	_, err = fmt.Fprintf(conn, "%s\n", name)
	return err
}
