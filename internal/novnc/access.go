package novnc

import (
	"bufio"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// respWriter wraps every response on the door: it records the status and
// body bytes for the access record, closes the connection after a refusal,
// and, when a WebSocket takes the connection over, gives it scry's TCP
// keepalive and no deadline (whatever listener and server options are in
// use: viewers must never idle out).
type respWriter struct {
	http.ResponseWriter
	ka       net.KeepAliveConfig
	code     int
	bytes    int64
	hijacked bool
	onHijack func() // runs once the connection is taken over
}

func (w *respWriter) WriteHeader(code int) {
	if w.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.code = code
		// A refusal closes the connection, so nothing more is read from
		// it (an unread body is not drained either). A missing file is
		// not a refusal: a page may look for optional ones.
		if code >= 400 && code != http.StatusNotFound {
			w.Header().Set("Connection", "close")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack implements http.Hijacker for the WebSocket upgrade.
func (w *respWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return c, brw, err
	}
	w.hijacked = true
	if w.code == 0 {
		w.code = http.StatusSwitchingProtocols
	}
	// The request's read bound (Config.RequestTimeout, or a server's
	// ReadTimeout) must not outlive the upgrade.
	c.SetDeadline(time.Time{})
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetKeepAliveConfig(w.ka)
	}
	if w.onHijack != nil {
		w.onHijack()
	}
	return c, brw, nil
}

func (w *respWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// logAccess writes the request's debug access record: never the query
// (noVNC's vnc.html takes ?password=) nor any header but X-Forwarded-For.
func logAccess(log *slog.Logger, r *http.Request, w *respWriter, start time.Time) {
	attrs := []any{"client", r.RemoteAddr, "method", r.Method, "path", logPath(r.URL.Path),
		"status", w.status(), "duration", time.Since(start).Round(time.Microsecond), "bytes", w.bytes}
	if fwd := r.Header.Get("X-Forwarded-For"); fwd != "" {
		attrs = append(attrs, "forwarded_for", fwd)
	}
	log.Debug("request", attrs...)
}
