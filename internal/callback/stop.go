package callback

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/logging"
)

// Stop queues the stop event for ev and returns at once. The event is sent
// in the background until the server answers 200, retrying any other answer
// or failure with exponential backoff for StopRetryWindow; after that it is
// logged as lost. Each retry is signed with the configuration current at
// that moment (see SetConfig and Disable). A stop whose request timed out
// on our side may still have reached the server, so the server should
// treat stop events as idempotent by stream_id.
//
// At most maxPendingStops events wait at once; past that, and after Close,
// Stop logs the event as dropped instead of queueing it.
func (c *Client) Stop(ev Event) {
	log := c.logger.With("session", ev.Session, "client_ip", ev.ClientIP,
		"channel", ev.Channel, "stream_id", logging.Clip(ev.StreamID), "event", EventStop)

	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		log.Error("callback stop dropped: client closed")
		c.reportLost(LostClosed)
		return
	case c.pending >= c.maxPending:
		c.mu.Unlock()
		log.Error("callback stop dropped: too many pending stop events", "pending", c.maxPending)
		c.reportLost(LostQueueFull)
		return
	}
	c.pending++
	c.wg.Add(1)
	c.mu.Unlock()

	go func() {
		defer func() {
			c.mu.Lock()
			c.pending--
			c.mu.Unlock()
			c.wg.Done()
		}()
		c.deliverStop(ev, log)
	}()
}

// deliverStop sends one stop event until it is accepted, the retry window
// closes, or Close gives up. Every attempt uses the configuration current
// at that moment; a SetConfig or Disable wakes a waiting retry, and while
// sending is disabled the event waits for the rest of its window.
func (c *Client) deliverStop(ev Event, log *slog.Logger) {
	deadline := time.Now().Add(c.retryWindow)
	backoff := c.retryInitial
	var timer *time.Timer
	for attempt := 1; ; attempt++ {
		started := time.Now()
		cfg, changed, err := c.config()
		if err == nil {
			err = c.sendStop(cfg, ev)
		}
		c.reportRequest(EventStop, err, started)
		if err == nil {
			if attempt > 1 {
				log.Info("callback stop delivered", "attempts", attempt)
			} else {
				log.Debug("callback stop delivered")
			}
			return
		}
		if c.life.Err() != nil {
			log.Error("callback stop lost: client closed before delivery", "attempts", attempt, "error", err)
			c.reportLost(LostClosed)
			return
		}
		// While disabled, wait for the rest of the window to be turned
		// back on; otherwise back off, if the window leaves room.
		disabled := errors.Is(err, ErrDisabled)
		remaining := time.Until(deadline)
		wait := backoff
		if disabled {
			wait = remaining
		}
		if (disabled && remaining <= 0) || (!disabled && backoff > remaining) {
			log.Error("callback stop lost: retry window over", "attempts", attempt,
				"window", c.retryWindow, "error", err)
			c.reportLost(LostRetryWindow)
			return
		}
		if attempt == 1 {
			log.Warn("callback stop failed, retrying", "error", err)
		} else {
			log.Debug("callback stop failed, retrying", "attempts", attempt, "error", err)
		}

		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		} else {
			timer.Reset(wait)
		}
		select {
		case <-timer.C:
			backoff = min(2*backoff, c.retryMax)
		case <-changed:
			// New settings: try them at once, from the first backoff.
			timer.Stop()
			backoff = c.retryInitial
		case <-c.life.Done():
			log.Error("callback stop lost: client closed before delivery", "attempts", attempt, "error", err)
			c.reportLost(LostClosed)
			return
		}
	}
}

// sendStop makes one delivery attempt with cfg.
func (c *Client) sendStop(cfg Config, ev Event) error {
	resp, err := c.send(c.life, cfg, EventStop, ev)
	if err != nil {
		return err
	}
	if resp.status != http.StatusOK {
		return fmt.Errorf("%w: status %d", ErrRejected, resp.status)
	}
	return nil
}

// Pending reports how many stop events are queued or in flight.
func (c *Client) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending
}

// Close stops accepting stop events and waits until every pending one is
// delivered or given up. If ctx ends first, the remaining events are
// abandoned and logged as lost, and Close returns ctx.Err() once their
// goroutines have exited. Idle connections are closed in either case.
// Start may still be called after Close.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()

	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()

	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		c.abort()
		<-done
	}
	c.abort()
	c.http.CloseIdleConnections()
	return err
}
