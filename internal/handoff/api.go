package handoff

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dataplanelabs/scry/internal/tokens"
)

// MaxBody bounds a request body on the API.
const MaxBody = 4 << 10

// MaxWait bounds a long-poll (?wait=).
const MaxWait = 60 * time.Second

// Prefix is where the API lives on the agent door.
const Prefix = "/scry/v1/handoffs"

// API serves the agent's side on CDP_PORT, behind that door's token:
//
//	POST   /scry/v1/handoffs            create; 201 with the link
//	GET    /scry/v1/handoffs            open ones and the last ended ones
//	GET    /scry/v1/handoffs/{id}       one; ?wait=30s long-polls (≤ 60 s)
//	DELETE /scry/v1/handoffs/{id}       cancel
type API struct {
	Registry *Registry
	// BaseURL is HANDOFF_BASE_URL: where people reach the human door. If
	// empty, links use the request's host with HumanPort's answer: the
	// port the human door listens on.
	BaseURL   string
	HumanPort func() int
	// Links says who may see a new handoff's link.
	Links LinkPolicy
}

// LinkPolicy decides who gets a handoff's link. The link is the person's
// view of the browser, full control of it (settings, DevTools, the cookie
// jar), so a scoped token (agent, observer) never gets it in an answer:
// it goes to the webhook only, and without one such a token cannot ask.
type LinkPolicy struct {
	// Webhook is whether HANDOFF_WEBHOOK_URL is set.
	Webhook bool
}

// ForRole says whether a caller with role (the agent door's
// tokens.RoleHeader; "" when the door set none) may see the link, or why
// it may not ask at all.
func (p LinkPolicy) ForRole(role string) (show bool, err error) {
	if role == "" || role == "admin" {
		return true, nil
	}
	if !p.Webhook {
		return false, errorf(http.StatusForbidden, "a %s token gets no handoff link, since the link is full control of the browser; "+
			"set HANDOFF_WEBHOOK_URL so scry sends links to people, or ask with an admin token", role)
	}
	return false, nil
}

// LinkBase is the start of the links handed out in answer to r.
func (a *API) LinkBase(r *http.Request) string {
	if a.BaseURL != "" {
		return strings.TrimRight(a.BaseURL, "/")
	}
	return LinkBase(r, a.HumanPort())
}

// LinkBase builds http(s)://HOST:port from the host a request used.
func LinkBase(r *http.Request, port int) string {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "" {
		host = "127.0.0.1"
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port))
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, Prefix)
	switch {
	case !ok || (rest != "" && rest != "/" && !strings.HasPrefix(rest, "/")):
		WriteError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint %s: the handoff API is %s", r.URL.Path, Prefix))
	case rest == "" || rest == "/":
		switch r.Method {
		case http.MethodPost:
			a.create(w, r)
		case http.MethodGet, http.MethodHead:
			WriteJSON(w, http.StatusOK, map[string]any{"handoffs": a.Registry.List()})
		default:
			w.Header().Set("Allow", "GET, POST")
			WriteError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: use POST to create a handoff, GET to list them", r.Method, Prefix))
		}
	default:
		id := rest[1:]
		if strings.Contains(id, "/") {
			WriteError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint %s: a handoff is %s/{id}", r.URL.Path, Prefix))
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			a.get(w, r, id)
		case http.MethodDelete:
			v, err := a.Registry.Cancel(id)
			if err != nil {
				writeErr(w, err)
				return
			}
			WriteJSON(w, http.StatusOK, v)
		default:
			w.Header().Set("Allow", "GET, DELETE")
			WriteError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s on a handoff: use GET to read it, DELETE to cancel it", r.Method))
		}
	}
}

func (a *API) create(w http.ResponseWriter, r *http.Request) {
	req, err := DecodeRequest(w, r)
	if err != nil {
		writeErr(w, err)
		return
	}
	show, err := a.Links.ForRole(r.Header.Get(tokens.RoleHeader))
	if err != nil {
		writeErr(w, err)
		return
	}
	v, err := a.Registry.Create(r.Context(), req, a.LinkBase(r))
	if err != nil {
		writeErr(w, err)
		return
	}
	if !show {
		v.URL = "" // sent to the webhook only
	}
	w.Header().Set("Location", Prefix+"/"+v.ID)
	WriteJSON(w, http.StatusCreated, v)
}

// DecodeRequest reads a creation request: JSON, at most MaxBody bytes,
// known fields only.
func DecodeRequest(w http.ResponseWriter, r *http.Request) (Request, error) {
	var req Request
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return req, errorf(http.StatusRequestEntityTooLarge, "request body over %d bytes: a handoff is a short JSON object", MaxBody)
	case err != nil:
		return req, errorf(http.StatusBadRequest, "cannot read the request body: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return req, errorf(http.StatusBadRequest, "unknown field %s: the fields are reason, targetId, url, timeoutSeconds", f)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return req, errorf(http.StatusBadRequest, "field %q must be a %s", te.Field, te.Type)
		}
		return req, errorf(http.StatusBadRequest, `body is not a JSON object (%v): send {"reason": "..."}`, err)
	}
	if dec.More() {
		return req, errorf(http.StatusBadRequest, "body holds more than one JSON value: send one object")
	}
	return req, nil
}

func (a *API) get(w http.ResponseWriter, r *http.Request, id string) {
	var wait time.Duration
	if s := r.URL.Query().Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			n, nerr := strconv.Atoi(s)
			if nerr != nil {
				WriteError(w, http.StatusBadRequest, fmt.Sprintf("wait=%q is not a duration: use e.g. wait=30s (at most %s)", s, MaxWait))
				return
			}
			d = time.Duration(n) * time.Second
		}
		if d < 0 || d > MaxWait {
			WriteError(w, http.StatusBadRequest, fmt.Sprintf("wait=%s is out of range: at most %s", s, MaxWait))
			return
		}
		wait = d
	}
	v, err := a.Registry.Wait(r.Context(), id, wait)
	if err != nil {
		writeErr(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, v)
}

// WriteJSON answers with v as JSON, never cached.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"cannot encode the answer"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// WriteError answers {"error": msg}.
func WriteError(w http.ResponseWriter, code int, msg string) {
	WriteJSON(w, code, map[string]string{"error": msg})
}

func writeErr(w http.ResponseWriter, err error) {
	var he *Error
	if errors.As(err, &he) {
		WriteError(w, he.Code, he.Msg)
		return
	}
	WriteError(w, http.StatusInternalServerError, err.Error())
}
