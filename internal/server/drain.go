package server

// DrainMode is what a draining server refuses. Sessions already running
// are never ended by it: they finish on their own, or at Shutdown.
type DrainMode uint32

const (
	// DrainOff refuses nothing for draining (the default).
	DrainOff DrainMode = iota
	// DrainPublishes refuses new publishes with "server draining"; new
	// connections and players are still taken.
	DrainPublishes
	// DrainConnections also refuses new connections, at their connect
	// command, with "server draining".
	DrainConnections
)

// Drain sets what the server refuses from now on, so that its publishers
// can move to another server before it stops; DrainOff takes it back.
// Publishes and connections already accepted keep running.
func (s *Server) Drain(mode DrainMode) { s.drain.Store(uint32(mode)) }

// Draining reports the mode set by Drain.
func (s *Server) Draining() DrainMode { return DrainMode(s.drain.Load()) }

// Refusals while draining.
const (
	drainReason             = "server draining"
	drainPublishDescription = "Server draining: publish to another server."
	drainConnectDescription = "Server draining: connect to another server."
)
