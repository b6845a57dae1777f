package callback

import (
	"errors"
	"time"
)

// ErrRejected is returned for a stop event that the callback server
// answered with a status other than 200 (the attempt is retried).
var ErrRejected = errors.New("callback: stop event not accepted")

// Why a stop event was given up, as Reporter.StopLost hears it.
const (
	// LostRetryWindow: no attempt was accepted within StopRetryWindow.
	LostRetryWindow = "retry_window"
	// LostClosed: Close gave up on it, or it came after Close.
	LostClosed = "closed"
	// LostQueueFull: maxPendingStops events were already waiting.
	LostQueueFull = "queue_full"
)

// Reporter hears how the client's requests end, for metrics. Its methods
// are called from the goroutines of Start and of the stop deliveries,
// without the client's locks held, and must not block.
type Reporter interface {
	// Request: one request of event (EventStart, EventStop) ended; err is
	// nil when it was accepted, else what Start returns or, for a stop
	// attempt, ErrRejected, ErrTimeout, ErrUnreachable or ErrDisabled.
	// took is how long it waited for the callback server.
	Request(event string, err error, took time.Duration)
	// StopLost: a stop event was given up for reason (the Lost constants).
	StopLost(reason string)
}

// SetReporter makes r hear every request from now on; nil stops that.
func (c *Client) SetReporter(r Reporter) {
	c.mu.Lock()
	c.reporter = r
	c.mu.Unlock()
}

func (c *Client) currentReporter() Reporter {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reporter
}

// reportRequest tells the reporter, if any, how a request ended.
func (c *Client) reportRequest(event string, err error, started time.Time) {
	if r := c.currentReporter(); r != nil {
		r.Request(event, err, time.Since(started))
	}
}

// reportLost tells the reporter, if any, that a stop event was given up.
func (c *Client) reportLost(reason string) {
	if r := c.currentReporter(); r != nil {
		r.StopLost(reason)
	}
}
