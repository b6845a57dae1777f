package sd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// storeMessage is one datagram read from the notify socket, with the
// descriptors it carried.
type storeMessage struct {
	text string
	fds  []int
}

// readStore reads the next datagram on conn with its SCM_RIGHTS.
func readStore(t *testing.T, conn *net.UnixConn) storeMessage {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(notifyDeadline)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*MaxStoreFDsPerMessage+4))
	n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	if flags&unix.MSG_CTRUNC != 0 {
		t.Fatal("control data truncated: more descriptors than one message may carry")
	}
	msg := storeMessage{text: string(buf[:n])}
	cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cmsgs {
		fds, err := unix.ParseUnixRights(&c)
		if err != nil {
			t.Fatal(err)
		}
		msg.fds = append(msg.fds, fds...)
	}
	t.Cleanup(func() {
		for _, fd := range msg.fds {
			unix.Close(fd)
		}
	})
	return msg
}

// TestStoreFilesPipes stores 300 pipes' write ends: two messages (253 and
// 47 descriptors) reach a real unixgram socket, each with the FDSTORE
// assignments, and every received descriptor is the same pipe (a byte
// written to it comes out of the pipe's read end).
func TestStoreFilesPipes(t *testing.T) {
	conn := listenNotify(t)
	const count = 300
	readers := make([]*os.File, count)
	fds := make([]int, count)
	for i := range count {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close(); w.Close() })
		readers[i] = r
		fds[i] = int(w.Fd())
	}
	if err := NewNotifier().StoreFiles("rtmp-handover", fds, StoreOptions{}); err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, want := range []int{MaxStoreFDsPerMessage, count - MaxStoreFDsPerMessage} {
		msg := readStore(t, conn)
		if msg.text != "FDSTORE=1\nFDNAME=rtmp-handover" {
			t.Errorf("message %q, want FDSTORE=1 and FDNAME=rtmp-handover", msg.text)
		}
		if len(msg.fds) != want {
			t.Errorf("message carries %d descriptors, want %d", len(msg.fds), want)
		}
		got = append(got, msg.fds...)
	}
	if len(got) != count {
		t.Fatalf("received %d descriptors, want %d", len(got), count)
	}
	for i, fd := range got {
		if _, err := unix.Write(fd, []byte{byte(i)}); err != nil {
			t.Fatalf("descriptor %d: %v", i, err)
		}
		b := make([]byte, 1)
		if err := readers[i].SetReadDeadline(time.Now().Add(notifyDeadline)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(readers[i], b); err != nil || b[0] != byte(i) {
			t.Fatalf("pipe %d: read %v, %v; want the byte written to the received descriptor", i, b, err)
		}
	}
}

// TestStoreFilesConnection stores a TCP connection and closes the sender's
// copy: the connection stays open (no EOF at the peer) and the received
// descriptor writes to it.
func TestStoreFilesConnection(t *testing.T) {
	conn := listenNotify(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	served, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	f, err := served.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	if err := NewNotifier().StoreFiles("rtmp-handover", []int{int(f.Fd())}, StoreOptions{}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	served.Close()

	msg := readStore(t, conn)
	if len(msg.fds) != 1 {
		t.Fatalf("message carries %d descriptors, want 1", len(msg.fds))
	}
	if _, err := unix.Write(msg.fds[0], []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if err := peer.SetReadDeadline(time.Now().Add(notifyDeadline)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("still here"))
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != "still here" {
		t.Fatalf("peer read %q, %v; want what the stored descriptor wrote, and no EOF", got, err)
	}
}

func TestStoreMessages(t *testing.T) {
	conn := listenNotify(t)
	n := NewNotifier()
	memfd, err := unix.MemfdCreate("state", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(memfd)
	if err := n.StoreFiles("rtmp-handover-state", []int{memfd}, StoreOptions{NoPoll: true}); err != nil {
		t.Fatal(err)
	}
	if msg := readStore(t, conn); msg.text != "FDSTORE=1\nFDNAME=rtmp-handover-state\nFDPOLL=0" || len(msg.fds) != 1 {
		t.Errorf("got %q with %d descriptors, want FDPOLL=0 and one descriptor", msg.text, len(msg.fds))
	}
	if err := n.RemoveStored("rtmp-handover"); err != nil {
		t.Fatal(err)
	}
	if msg := readStore(t, conn); msg.text != "FDSTOREREMOVE=1\nFDNAME=rtmp-handover" || len(msg.fds) != 0 {
		t.Errorf("got %q with %d descriptors, want FDSTOREREMOVE=1 and none", msg.text, len(msg.fds))
	}
}

func TestStoreBadNames(t *testing.T) {
	listenNotify(t)
	n := NewNotifier()
	for _, name := range []string{"", "a:b", "with space", "tab\t", "nl\n", "é", strings.Repeat("x", 256)} {
		if err := n.StoreFiles(name, []int{0}, StoreOptions{}); !errors.Is(err, ErrBadFDName) {
			t.Errorf("StoreFiles(%q) = %v, want ErrBadFDName", name, err)
		}
		if err := n.RemoveStored(name); !errors.Is(err, ErrBadFDName) {
			t.Errorf("RemoveStored(%q) = %v, want ErrBadFDName", name, err)
		}
	}
	if err := checkFDName(strings.Repeat("x", 255)); err != nil {
		t.Errorf("a 255-byte name: %v", err)
	}
}

func TestStoreWithoutNotifySocket(t *testing.T) {
	unsetEnv(t, "NOTIFY_SOCKET")
	n := NewNotifier()
	if err := n.StoreFiles("rtmp-handover", []int{0}, StoreOptions{}); !errors.Is(err, ErrNoNotifySocket) {
		t.Errorf("StoreFiles = %v, want ErrNoNotifySocket", err)
	}
	if err := n.RemoveStored("rtmp-handover"); !errors.Is(err, ErrNoNotifySocket) {
		t.Errorf("RemoveStored = %v, want ErrNoNotifySocket", err)
	}
}

func TestStoreMax(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  int
	}{{"", 0}, {"20100", 20100}, {"-1", 0}, {"x", 0}} {
		t.Setenv("FDSTORE", tt.value)
		if got := StoreMax(); got != tt.want {
			t.Errorf("FDSTORE=%q: StoreMax() = %d, want %d", tt.value, got, tt.want)
		}
	}
}

// TestListenersAndStore starts the test binary with descriptors passed as
// systemd passes a socket unit's listener and its file descriptor store:
// the listener is served, the stored ones come back by name with their
// contents.
func TestListenersAndStore(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lnFile, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer lnFile.Close()
	memfd, err := unix.MemfdCreate("state", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	state := os.NewFile(uintptr(memfd), "state")
	defer state.Close()
	if _, err := state.WriteString("saved state"); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=store", "LISTEN_PID=self", "LISTEN_FDS=3",
		"LISTEN_FDNAMES=rtmp:rtmp-handover-state:rtmp-handover")
	cmd.ExtraFiles = []*os.File{lnFile, state, w}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	got, err := readName(ln.Addr().String())
	if err != nil {
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v; child stderr:\n%s", err, stderr.String())
	}
	if got != "rtmp" {
		t.Errorf("listener served %q, want rtmp", got)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("child: %v\n%s", err, stderr.String())
		}
	case <-time.After(helperDeadline):
		cmd.Process.Kill()
		<-done
		t.Fatal("child did not exit")
	}
	for _, want := range []string{"stored: rtmp-handover-state: saved state", "stored: rtmp-handover: pipe"} {
		if !containsLine(stdout.String(), want) {
			t.Errorf("child printed:\n%s\nwant the line %q", stdout.String(), want)
		}
	}
	w.Close()
	if b, _ := io.ReadAll(bufio.NewReader(r)); string(b) != "written through the stored pipe" {
		t.Errorf("pipe got %q", b)
	}
}

// storeHelper is the child of TestListenersAndStore.
func storeHelper() int {
	if os.Getenv("LISTEN_PID") == "self" {
		os.Setenv("LISTEN_PID", fmt.Sprint(os.Getpid()))
	}
	p, err := ListenersAndStore("rtmp-handover", "rtmp")
	if err != nil {
		fmt.Printf("error: %v\n", err)
		return 1
	}
	defer p.Close()
	for _, f := range p.Stored {
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil {
			fmt.Printf("error: %v\n", err)
			return 1
		}
		if st.Mode&unix.S_IFMT == unix.S_IFIFO {
			if _, err := f.WriteString("written through the stored pipe"); err != nil {
				fmt.Printf("error: %v\n", err)
				return 1
			}
			fmt.Printf("stored: %s: pipe\n", f.Name())
			continue
		}
		b, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<20))
		if err != nil {
			fmt.Printf("error: %v\n", err)
			return 1
		}
		fmt.Printf("stored: %s: %s\n", f.Name(), b)
	}
	if err := serveName(p.Listeners["rtmp"], "rtmp"); err != nil {
		fmt.Printf("error: %v\n", err)
		return 1
	}
	return 0
}
