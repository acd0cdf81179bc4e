package handoff

import (
	"context"
	_ "embed"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

//go:embed page.html
var pageHTML []byte

// cookiePrefix names the cookie of one handoff: scry_h_<id>.
const cookiePrefix = "scry_h_"

// cookieGrace keeps a handoff's cookie this long past its expiry.
const cookieGrace = 10 * time.Minute

// Human serves the person's side on NOVNC_PORT:
//
//	GET  /h/{secret}        the one-time link: sets the handoff's cookie,
//	                        redirects to the page
//	GET  /handoff?id=ID     the page: the reason, Done, the screen
//	GET  /handoff/state     ?id=ID: the handoff as the page sees it
//	POST /handoff/done      ?id=ID: the person is done
//
// and, through Viewer, lets that page's /websockify?handoff=ID in without
// the VNC password.
type Human struct {
	Registry *Registry
}

// Routes are the patterns to mount on the human door's mux.
func (h *Human) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"GET /h/{secret}":    http.HandlerFunc(h.link),
		"GET /handoff":       http.HandlerFunc(h.page),
		"GET /handoff/state": http.HandlerFunc(h.state),
		"POST /handoff/done": http.HandlerFunc(h.done),
	}
}

func headers(hd http.Header) {
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Content-Security-Policy", "frame-ancestors 'none'")
	// The link carries its secret: it must never travel in a Referer.
	hd.Set("Referrer-Policy", "no-referrer")
}

func cookieName(id string) string { return cookiePrefix + id }

func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (h *Human) link(w http.ResponseWriter, r *http.Request) {
	headers(w.Header())
	secret := r.PathValue("secret")
	// A browser that opened this link before holds its cookie; which one
	// is unknown until the secret is looked up, so offer them all.
	var v View
	var cookie string
	var err error
	v, cookie, err = h.Registry.openLink(secret, "")
	var he *Error
	if errors.As(err, &he) && he.Code == http.StatusGone {
		for _, c := range r.Cookies() {
			if strings.HasPrefix(c.Name, cookiePrefix) {
				if v2, _, err2 := h.Registry.openLink(secret, c.Value); err2 == nil {
					v, err = v2, nil
					break
				}
			}
		}
	}
	if err != nil {
		code := http.StatusInternalServerError
		if errors.As(err, &he) {
			code = he.Code
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(err.Error() + "\n"))
		return
	}
	if cookie != "" {
		http.SetCookie(w, &http.Cookie{
			Name: cookieName(v.ID), Value: cookie, Path: "/",
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r),
			// Past the handoff's end, so that its page can still learn
			// how it ended; the registry refuses it once it has.
			Expires: v.ExpiresAt.Add(cookieGrace),
		})
	}
	// Relative, so that a path prefix in front of the door is kept.
	w.Header().Set("Location", "../handoff?id="+url.QueryEscape(v.ID))
	w.WriteHeader(http.StatusSeeOther)
}

func (h *Human) page(w http.ResponseWriter, r *http.Request) {
	headers(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(pageHTML)
}

// entryFor finds the handoff the request's cookie opens.
func (h *Human) entryFor(r *http.Request) (string, *entry, bool) {
	id := r.URL.Query().Get("id")
	if id == "" {
		id = r.URL.Query().Get("handoff")
	}
	c, err := r.Cookie(cookieName(id))
	if err != nil {
		return id, nil, false
	}
	e, ok := h.Registry.byCookie(id, c.Value)
	return id, e, ok
}

func (h *Human) state(w http.ResponseWriter, r *http.Request) {
	headers(w.Header())
	id, _, ok := h.entryFor(r)
	if !ok {
		WriteError(w, http.StatusForbidden, "this browser holds no key to this handoff: open the link you were sent")
		return
	}
	v, err := h.Registry.Get(id)
	if err != nil {
		writeErr(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, v)
}

func (h *Human) done(w http.ResponseWriter, r *http.Request) {
	headers(w.Header())
	// SameSite=Strict keeps other sites' forms from carrying the cookie;
	// an Origin, when sent, must be this door's own too (as the browser
	// or, behind a proxy, X-Forwarded-Host names it).
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Host, r.Host) && !strings.EqualFold(u.Host, r.Header.Get("X-Forwarded-Host")) {
			WriteError(w, http.StatusForbidden, "cross-origin request refused")
			return
		}
	}
	id, _, ok := h.entryFor(r)
	if !ok {
		WriteError(w, http.StatusForbidden, "this browser holds no key to this handoff: open the link you were sent")
		return
	}
	v, err := h.Registry.finish(id, cookieValue(r, id))
	if err != nil {
		writeErr(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, v)
}

func cookieValue(r *http.Request, id string) string {
	c, err := r.Cookie(cookieName(id))
	if err != nil {
		return ""
	}
	return c.Value
}

// Viewer admits a /websockify?handoff=ID request that carries that
// active handoff's cookie: it returns a context that ends when the
// handoff does (the bridge then cuts the viewer), and true. Anything else
// returns false, and the viewer logs in with the VNC password as usual.
func (h *Human) Viewer(r *http.Request) (context.Context, bool) {
	if r.URL.Query().Get("handoff") == "" {
		return nil, false
	}
	_, e, ok := h.entryFor(r)
	if !ok {
		return nil, false
	}
	h.Registry.mu.Lock()
	defer h.Registry.mu.Unlock()
	if e.v.State != Active {
		return nil, false
	}
	return e.ctx, true
}
