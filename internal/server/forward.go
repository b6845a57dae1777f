package server

import (
	"context"

	"github.com/rtmp-server/rtmp-server/internal/hub"
)

// Forwarder pushes publications to other servers (package forward). Its
// methods are called on the publisher's read loop and must not block.
type Forwarder interface {
	// Forward starts forwarding pub, which took over replaced (a
	// reconnecting encoder) or nil, to the configured targets and to
	// extra, the start callback's targets for this publish.
	Forward(pub, replaced *hub.Publication, extra []string)
	// Ended tells that pub's publisher left; handedOver when a new
	// publisher took the stream over (its Forward follows, or came first).
	Ended(pub *hub.Publication, handedOver bool)
}

// ForwardAuthorizer is an Authorizer whose approval may name targets to
// forward the publish to (the start callback's forward-url headers).
// When the server's Authorizer is one, StartForwards is called instead of
// Start.
type ForwardAuthorizer interface {
	Authorizer
	StartForwards(ctx context.Context, ev PublishEvent) (streamID string, forwardURLs []string, err error)
}

// startPublish asks auth, returning the stream ID and the forward targets
// it named.
func startPublish(ctx context.Context, auth Authorizer, ev PublishEvent) (string, []string, error) {
	if fa, ok := auth.(ForwardAuthorizer); ok {
		return fa.StartForwards(ctx, ev)
	}
	id, err := auth.Start(ctx, ev)
	return id, nil, err
}

// forwardStarted and forwardEnded tell the server's Forwarder, if any.
func (s *Server) forwardStarted(pub, replaced *hub.Publication, extra []string) {
	if s.Forwarder != nil {
		s.Forwarder.Forward(pub, replaced, extra)
	}
}

func (s *Server) forwardEnded(pub *hub.Publication, handedOver bool) {
	if s.Forwarder != nil {
		s.Forwarder.Ended(pub, handedOver)
	}
}
