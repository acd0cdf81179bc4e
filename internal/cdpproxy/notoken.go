package cdpproxy

import (
	"context"
	"net/http"
)

// Selenium's chromedriver attaches to an existing browser with
// debuggerAddress, a bare host:port: it can carry neither a header nor a
// query, so it can never present CDP_TOKEN. For it scry can open a second
// door without the token (CDP_NOAUTH_PORT), which the app binds to
// loopback only. It is the same bridge, with the same Host and Origin
// checks, the same connection cap and metrics; only the token is not
// asked for, and never handed out there either.
//
// A separate loopback port was chosen over exempting source addresses on
// CDP_PORT: forwarded traffic arrives from addresses the operator does not
// see in the configuration (kubectl port-forward and rootless podman's
// port forwarder connect from 127.0.0.1 inside the container, Docker's
// proxy and Kubernetes' SNAT from a bridge or node address), so an
// address exemption quietly exempts whatever is forwarded through it. A
// port nobody publishes is opened only by those who name it.

type noTokenKey struct{}

// NoToken returns a handler serving the same door without the token: for a
// listener only trusted local clients can reach (see CDP_NOAUTH_PORT).
func (p *Proxy) NoToken() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), noTokenKey{}, true)))
	})
}

// noToken reports whether r came through the NoToken door.
func noToken(r *http.Request) bool {
	v, _ := r.Context().Value(noTokenKey{}).(bool)
	return v
}
