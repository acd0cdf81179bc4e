package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"syscall"
	"time"

	"github.com/dataplanelabs/scry/internal/supervise"
)

// readyTimeout bounds one /readyz check of Chromium. A Kubernetes
// readiness probe on /readyz needs a timeoutSeconds above it (the
// kubelet's default, 1 s, is below it).
const readyTimeout = 3 * time.Second

// health answers /healthz and /readyz on the agent door.
//
// /healthz says scry is up and Chromium's process is alive. It never
// talks to Chromium, so a busy browser cannot fail it: it is the liveness
// signal. /readyz says Chromium answered a CDP call on scry's one
// persistent internal connection within timeout: a slow or stalled
// browser fails it. Neither blocks past its budget: /healthz does no I/O,
// and /readyz gives up at timeout even while that connection is being
// redialled for someone else (browserConn.Get waits on its caller's
// context, never on a lock held across the network).
type health struct {
	chromium func() *supervise.Process // nil or exited: not alive
	conn     *browserConn
	timeout  time.Duration
	log      *slog.Logger
}

func (s *scry) health() http.Handler {
	h := &health{
		chromium: s.chromiumProcess,
		conn:     s.bconn,
		timeout:  readyTimeout,
		log:      s.log,
	}
	return h.handler()
}

func (h *health) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if err := h.alive(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if err := h.ready(r.Context()); err != nil {
			h.log.Debug("not ready", "err", err)
			http.Error(w, "chromium did not answer over CDP within "+h.timeout.String(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// alive reports whether Chromium's process is running: not reaped, and
// still there to signal.
func (h *health) alive() error {
	p := h.chromium()
	if p == nil || p.Exited() || syscall.Kill(p.Pid(), 0) != nil {
		return errors.New("chromium is not running")
	}
	return nil
}

// ready makes one CDP call on the persistent connection within h.timeout.
func (h *health) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	if h.conn == nil {
		return errors.New("no connection to chromium yet")
	}
	c, err := h.conn.Get(ctx)
	if err != nil {
		return err
	}
	return c.Call(ctx, "Browser.getVersion", nil, nil)
}
