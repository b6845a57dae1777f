package server

import (
	"context"
	"fmt"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/handover"
	"github.com/rtmp-server/rtmp-server/internal/logging"
)

// CarriedAdmission is an Admission whose admissions go on in the next
// process of a hand-over (a fleet's claims: same box, same stream id). A
// server whose Admission is not one does not hand over
// (ErrHandOverAdmission).
type CarriedAdmission interface {
	Admission
	// Token returns what the next process needs to take back the
	// admission of the live publish ev; ok is false when ev has none here.
	// It changes nothing: a hand-over that does not happen releases the
	// admission as usual.
	Token(ev PublishEvent) (token string, ok bool)
	// CarriedOver tells that the publish ev went to the next process: its
	// admission is no longer kept here, and the release Admit returned for
	// it does nothing (the admission is the next process's, or expires).
	CarriedOver(ev PublishEvent)
	// TakeBack takes back, in the next process, the admission of a
	// publish handed over with token. It returns the release as Admit
	// does; its error ends the publish (its text is logged, clipped).
	TakeBack(ctx context.Context, ev PublishEvent, token string) (release func(), err error)
}

// takeBackTimeout bounds taking back one publish's admission in Adopt.
const takeBackTimeout = 5 * time.Second

// carrier returns the server's Admission as a CarriedAdmission (nil
// without an Admission), or ErrHandOverAdmission.
func (s *Server) carrier() (CarriedAdmission, error) {
	if s.Admission == nil {
		return nil, nil
	}
	ca, ok := s.Admission.(CarriedAdmission)
	if !ok {
		return nil, ErrHandOverAdmission
	}
	return ca, nil
}

// takeBack takes back the admission of the adopted publisher c: the
// carried one, or a new one if none was carried (the previous process had
// no Admission). Without an Admission the release does nothing.
func (s *Server) takeBack(c *conn, key string, saved *handover.Publisher) (release func(), err error) {
	if s.Admission == nil {
		return func() {}, nil
	}
	ev := c.event(key, saved.StreamID)
	ctx, cancel := context.WithTimeout(context.Background(), takeBackTimeout)
	defer cancel()
	ca, ok := s.Admission.(CarriedAdmission)
	if ok && saved.Claim != "" {
		release, err = ca.TakeBack(ctx, ev, saved.Claim)
	} else {
		release, err = s.Admission.Admit(ctx, ev)
	}
	if err != nil {
		return nil, fmt.Errorf("admission not taken back: %s", logging.ClipN(err.Error(), maxReasonText))
	}
	return release, nil
}
