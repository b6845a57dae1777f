package forward_test

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/forward"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// TestForwardRTMPS forwards to an RTMPS target with a self-signed
// certificate: with verification (against the system's roots) the forward
// retries, naming the certificate; with FORWARD_TLS_INSECURE it goes live
// and a player on the target gets the stream.
func TestForwardRTMPS(t *testing.T) {
	t.Parallel()
	pair := testpeer.SelfSigned(t, 1)
	target := newNode(t, nil)
	ln := tls.NewListener(testpeer.Listen(t), &tls.Config{Certificates: []tls.Certificate{pair.TLSCertificate(t)}})
	servertestServe(t, target, ln)

	for _, insecure := range []bool{false, true} {
		tpl, err := forward.ParseTemplate("rtmps://" + target.addr + "/{channel}/{key}")
		if err != nil {
			t.Fatal(err)
		}
		origin := startNode(t, &forward.Config{Templates: []forward.Template{tpl}, Insecure: insecure})
		channel := "verified"
		if insecure {
			channel = "insecure"
		}
		pub, err := publish(t, origin.addr, channel, "k", 20*time.Millisecond, 500, 10)
		if err != nil {
			t.Fatal(err)
		}
		if !insecure {
			testpeer.WaitFor(t, "the forward refusing the certificate", waitLimit, func() bool {
				st := origin.forward(t)
				return st.State == forward.StateRetrying && strings.Contains(st.LastError, "certificate")
			})
			pub.c.Close()
			continue
		}
		origin.waitLive(t)
		watcher, err := playTLS(t, target.addr, channel, "k")
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.send(30); err != nil {
			t.Fatal(err)
		}
		testpeer.WaitFor(t, "frames on the RTMPS target", waitLimit, func() bool { return watcher.has(29) })
	}
}
