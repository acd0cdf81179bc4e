package app

import (
	"context"
	"fmt"
	"net/http"
	"syscall"
	"time"
)

// readyTimeout bounds one /readyz check of Chromium.
const readyTimeout = 3 * time.Second

// health answers /healthz and /readyz on the agent door.
//
// /healthz says scry is up and Chromium's process is alive. It never
// talks to Chromium, so a busy browser cannot fail it: it is the liveness
// signal. /readyz says Chromium answered a CDP call on scry's one
// persistent internal connection within readyTimeout: a slow or stalled
// browser fails it, which only takes the pod out of rotation.
func (s *scry) health() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		p := s.chromium
		if p == nil || p.Exited() || syscall.Kill(p.Pid(), 0) != nil {
			http.Error(w, "chromium is not running", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		c, err := s.bconn.Get(ctx)
		if err == nil {
			err = c.Call(ctx, "Browser.getVersion", nil, nil)
		}
		if err != nil {
			s.log.Debug("not ready", "err", err)
			http.Error(w, "chromium did not answer over CDP within "+readyTimeout.String(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}
