// Package handoff lets an agent ask for a person: it keeps the registry of
// handoffs (a reason, a one-time link, a state), serves the agent's HTTP
// API for them (api.go) and the person's side of the link on the human
// door (human.go).
//
// A handoff starts pending. The first open of its link (/h/<secret>)
// exchanges the secret for a cookie scoped to that handoff and makes it
// active; the link is then spent. It ends done (the person pressed Done),
// expired (its timeout passed) or cancelled (the agent withdrew it); an
// ending cuts the viewer that the cookie let in.
//
// Secrets (the link's and the cookie's) are 128 bits from crypto/rand;
// only their SHA-256 is kept, and neither is ever logged. Handoffs live in
// memory: open ones do not survive a restart.
package handoff

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// State is where a handoff is.
type State string

// The states. Pending and Active are open; the rest are ended.
const (
	Pending   State = "pending"
	Active    State = "active"
	Done      State = "done"
	Expired   State = "expired"
	Cancelled State = "cancelled"
)

// Open reports whether a handoff in state s has not ended.
func (s State) Open() bool { return s == Pending || s == Active }

// Limits from the API's contract.
const (
	MaxReason      = 500
	DefaultTimeout = 900 * time.Second
	MinTimeout     = 10 * time.Second
	MaxTimeout     = 86400 * time.Second
	DefaultMaxOpen = 32
	DefaultKeep    = 100
)

// Gone is the sentence for an id or link scry does not know: it may be
// from before a restart.
const Gone = "scry does not know this handoff: open handoffs do not survive a restart of scry, and ended ones are kept only for the last 100; create a new one"

// Request is what an agent asks for.
type Request struct {
	Reason   string `json:"reason"`
	TargetID string `json:"targetId,omitempty"`
	URL      string `json:"url,omitempty"`
	// TimeoutSeconds: nil means DefaultTimeout.
	TimeoutSeconds *int `json:"timeoutSeconds,omitempty"`
}

// View is a handoff as the API shows it. URL, the person's link, is known
// only when the handoff is created (scry keeps its hash, not the link).
type View struct {
	ID        string     `json:"id"`
	URL       string     `json:"url,omitempty"`
	State     State      `json:"state"`
	Reason    string     `json:"reason"`
	TargetID  string     `json:"targetId,omitempty"`
	CreatedAt time.Time  `json:"createdAt"`
	ExpiresAt time.Time  `json:"expiresAt"`
	EndedAt   *time.Time `json:"endedAt,omitempty"`
}

// Event is a change worth telling someone about: "handoff.created",
// "handoff.active", "handoff.done", "handoff.expired",
// "handoff.cancelled". The created event's Handoff carries the link.
type Event struct {
	Name    string
	Handoff View
}

// Error is a refusal with the HTTP status that fits it.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Browser is what a handoff needs of Chromium: a tab opened for it, and
// that tab (or the agent's) brought to the front when the person arrives.
type Browser interface {
	HasTarget(ctx context.Context, targetID string) (bool, error)
	NewTab(ctx context.Context, url string) (targetID string, err error)
	Activate(ctx context.Context, targetID string) error
}

// Config configures a Registry.
type Config struct {
	// Browser, if not nil, checks targetId, opens url and brings the
	// page to the front; nil refuses requests that name either.
	Browser Browser
	// Logger gets one INFO line per state change (ids, never secrets).
	Logger *slog.Logger
	// OnEvent, if not nil, is told every created handoff and every state
	// change (a webhook). It must not block.
	OnEvent func(Event)
	// MaxOpen caps open handoffs (DefaultMaxOpen if 0); Keep is how many
	// ended ones are remembered (DefaultKeep if 0).
	MaxOpen, Keep int
}

// Registry holds the handoffs. Its zero value is not usable; call New.
type Registry struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	byID     map[string]*entry
	bySecret map[[32]byte]*entry
	open     int // open handoffs, and creations in progress
	ended    []*entry
	closed   bool

	outcomes *prometheus.CounterVec

	testWaiting func() // tests: a Wait has taken its snapshot
}

type entry struct {
	v        View
	secret   [32]byte // hash of the link's secret
	cookie   [32]byte // hash of the cookie's secret, once opened
	opened   bool
	tab      string // the tab opened from url, if any
	changed  chan struct{}
	timer    *time.Timer
	ctx      context.Context // ends when the handoff ends: cuts its viewer
	cancelFn context.CancelFunc
}

// New returns an empty registry.
func New(cfg Config) *Registry {
	if cfg.MaxOpen <= 0 {
		cfg.MaxOpen = DefaultMaxOpen
	}
	if cfg.Keep <= 0 {
		cfg.Keep = DefaultKeep
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Registry{
		cfg:      cfg,
		log:      cfg.Logger,
		byID:     map[string]*entry{},
		bySecret: map[[32]byte]*entry{},
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scry_handoffs_total",
			Help: "Handoffs ended since start, by outcome (done, expired, cancelled)."}, []string{"outcome"}),
	}
	for _, s := range []State{Done, Expired, Cancelled} {
		r.outcomes.WithLabelValues(string(s))
	}
	return r
}

// Collectors are the registry's metrics: scry_handoffs_total{outcome} and
// scry_handoffs_open.
func (r *Registry) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		r.outcomes,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "scry_handoffs_open", Help: "Handoffs pending or active now."},
			func() float64 { return float64(r.Open()) }),
	}
}

// Open returns how many handoffs are pending or active.
func (r *Registry) Open() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.byID {
		if e.v.State.Open() {
			n++
		}
	}
	return n
}

// Active returns the ID of a handoff a person holds now (its link was
// opened), if any: while one is, agents' input is refused (cdprole).
func (r *Registry) Active() (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, e := range r.byID {
		if e.v.State == Active {
			return id, true
		}
	}
	return "", false
}

// newSecret returns 128 random bits, base64url, and their hash.
func newSecret() (string, [32]byte) {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	s := base64.RawURLEncoding.EncodeToString(b)
	return s, sha256.Sum256([]byte(s))
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "h_" + hex.EncodeToString(b)
}

// Validate checks a request against the API's contract and returns its
// timeout.
func Validate(req *Request) (time.Duration, error) {
	req.Reason = strings.TrimSpace(req.Reason)
	if req.Reason == "" {
		return 0, errorf(http.StatusBadRequest, `"reason" is required: say in a sentence what the person should do (at most %d characters)`, MaxReason)
	}
	if n := utf8.RuneCountInString(req.Reason); n > MaxReason {
		return 0, errorf(http.StatusBadRequest, `"reason" has %d characters; at most %d are allowed`, n, MaxReason)
	}
	timeout := DefaultTimeout
	if req.TimeoutSeconds != nil {
		timeout = time.Duration(*req.TimeoutSeconds) * time.Second
		if timeout < MinTimeout || timeout > MaxTimeout {
			return 0, errorf(http.StatusBadRequest, `"timeoutSeconds" is %d; it must be between %d and %d (default %d)`,
				*req.TimeoutSeconds, int(MinTimeout.Seconds()), int(MaxTimeout.Seconds()), int(DefaultTimeout.Seconds()))
		}
	}
	if req.URL != "" {
		u, err := url.Parse(req.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return 0, errorf(http.StatusBadRequest, `"url" must be an absolute http or https URL, not %q`, req.URL)
		}
	}
	if req.TargetID != "" && (len(req.TargetID) > 128 || strings.ContainsAny(req.TargetID, "/?#% \t\r\n")) {
		return 0, errorf(http.StatusBadRequest, `"targetId" %q is not a CDP target id: take one from /json/list or Target.getTargets`, req.TargetID)
	}
	return timeout, nil
}

// Create registers a handoff, opens its tab if it names a url, and returns
// it with its link: linkBase followed by /h/<secret>.
func (r *Registry) Create(ctx context.Context, req Request, linkBase string) (View, error) {
	timeout, err := Validate(&req)
	if err != nil {
		return View{}, err
	}
	if (req.URL != "" || req.TargetID != "") && r.cfg.Browser == nil {
		return View{}, errorf(http.StatusBadRequest, `this scry cannot open "url" or bring "targetId" to the front`)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return View{}, errorf(http.StatusServiceUnavailable, "scry is shutting down")
	}
	if r.open >= r.cfg.MaxOpen {
		r.mu.Unlock()
		return View{}, errorf(http.StatusTooManyRequests, "%d handoffs are open, the most scry keeps at once: wait for one to end or cancel one (DELETE /scry/v1/handoffs/{id})", r.cfg.MaxOpen)
	}
	r.open++ // reserved while the browser is asked
	r.mu.Unlock()
	release := func() { r.mu.Lock(); r.open--; r.mu.Unlock() }

	var tab string
	if req.TargetID != "" {
		ok, err := r.cfg.Browser.HasTarget(ctx, req.TargetID)
		if err != nil {
			release()
			return View{}, errorf(http.StatusBadGateway, "cannot list Chromium's targets to check targetId: %v", err)
		}
		if !ok {
			release()
			return View{}, errorf(http.StatusBadRequest, `no target %q in the browser: take a live one from /json/list or Target.getTargets`, req.TargetID)
		}
	}
	if req.URL != "" {
		if tab, err = r.cfg.Browser.NewTab(ctx, req.URL); err != nil {
			release()
			return View{}, errorf(http.StatusBadGateway, "cannot open url in a new tab: %v", err)
		}
	}

	secret, hash := newSecret()
	now := time.Now().UTC().Truncate(time.Millisecond)
	e := &entry{
		v: View{
			ID: newID(), State: Pending, Reason: req.Reason, TargetID: req.TargetID,
			CreatedAt: now, ExpiresAt: now.Add(timeout),
		},
		secret:  hash,
		tab:     tab,
		changed: make(chan struct{}),
	}
	e.ctx, e.cancelFn = context.WithCancel(context.Background())
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		release()
		return View{}, errorf(http.StatusServiceUnavailable, "scry is shutting down")
	}
	r.byID[e.v.ID] = e
	r.bySecret[hash] = e
	id := e.v.ID
	e.timer = time.AfterFunc(timeout, func() { r.end(id, Expired) })
	v := e.v
	r.mu.Unlock()

	r.log.Info("handoff created", "id", v.ID, "state", v.State, "timeout", timeout,
		"target_id", v.TargetID, "opened_tab", tab != "", "expires_at", v.ExpiresAt.Format(time.RFC3339))
	v.URL = strings.TrimRight(linkBase, "/") + "/h/" + secret
	r.emit("handoff.created", v)
	return v, nil
}

func (r *Registry) emit(name string, v View) {
	if r.cfg.OnEvent != nil {
		r.cfg.OnEvent(Event{Name: name, Handoff: v})
	}
}

// Get returns a handoff's current view.
func (r *Registry) Get(id string) (View, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.byID[id]
	if !ok {
		return View{}, &Error{Code: http.StatusNotFound, Msg: Gone}
	}
	return e.v, nil
}

// Wait returns a handoff's view once its state changes, d passes or ctx
// ends, whichever comes first; at once if it has ended (it changes no
// more).
func (r *Registry) Wait(ctx context.Context, id string, d time.Duration) (View, error) {
	r.mu.Lock()
	e, ok := r.byID[id]
	if !ok {
		r.mu.Unlock()
		return View{}, &Error{Code: http.StatusNotFound, Msg: Gone}
	}
	ch, open := e.changed, e.v.State.Open()
	r.mu.Unlock()
	if r.testWaiting != nil {
		r.testWaiting()
	}
	if d > 0 && open {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return r.Get(id)
}

// List returns the open handoffs, oldest first, then the ended ones it
// remembers, most recently ended first.
func (r *Registry) List() []View {
	r.mu.Lock()
	defer r.mu.Unlock()
	var open []View
	for _, e := range r.byID {
		if e.v.State.Open() {
			open = append(open, e.v)
		}
	}
	slices.SortFunc(open, func(a, b View) int { return a.CreatedAt.Compare(b.CreatedAt) })
	out := open
	for i := len(r.ended) - 1; i >= 0; i-- {
		out = append(out, r.ended[i].v)
	}
	if out == nil {
		out = []View{}
	}
	return out
}

// Cancel withdraws a handoff: its link stops working and its viewer is
// cut.
func (r *Registry) Cancel(id string) (View, error) {
	r.mu.Lock()
	e, ok := r.byID[id]
	if !ok {
		r.mu.Unlock()
		return View{}, &Error{Code: http.StatusNotFound, Msg: Gone}
	}
	if st := e.v.State; !st.Open() {
		r.mu.Unlock()
		return View{}, errorf(http.StatusConflict, "handoff %s has already ended (%s): there is nothing to cancel", id, st)
	}
	r.mu.Unlock()
	return r.end(id, Cancelled)
}

// end moves an open handoff to an ended state; it is a no-op on one that
// has ended already.
func (r *Registry) end(id string, s State) (View, error) {
	r.mu.Lock()
	e, ok := r.byID[id]
	if !ok {
		r.mu.Unlock()
		return View{}, &Error{Code: http.StatusNotFound, Msg: Gone}
	}
	if !e.v.State.Open() {
		v := e.v
		r.mu.Unlock()
		return v, nil
	}
	prev := e.v.State
	now := time.Now().UTC().Truncate(time.Millisecond)
	e.v.State, e.v.EndedAt = s, &now
	e.timer.Stop()
	e.cancelFn()
	close(e.changed)
	e.changed = make(chan struct{})
	r.open--
	r.ended = append(r.ended, e)
	for len(r.ended) > r.cfg.Keep {
		old := r.ended[0]
		r.ended = r.ended[1:]
		delete(r.byID, old.v.ID)
		delete(r.bySecret, old.secret)
	}
	v := e.v
	r.mu.Unlock()

	r.outcomes.WithLabelValues(string(s)).Inc()
	r.log.Info("handoff "+string(s), "id", id, "state", s, "from", prev,
		"after", now.Sub(v.CreatedAt).Round(time.Millisecond))
	r.emit("handoff."+string(s), v)
	return v, nil
}

// Close ends nothing but stops the expiry timers and cuts every viewer a
// handoff let in: scry is stopping, and open handoffs die with it.
func (r *Registry) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for _, e := range r.byID {
		e.timer.Stop()
		e.cancelFn()
	}
}

// openLink exchanges a link's secret for a cookie secret: the first open
// makes the handoff active. again is the cookie the browser already holds
// for it, if any: the same browser reloading the link gets back in.
func (r *Registry) openLink(secret, again string) (v View, cookie string, err error) {
	hash := sha256.Sum256([]byte(secret))
	r.mu.Lock()
	e, ok := r.bySecret[hash]
	if !ok {
		r.mu.Unlock()
		return View{}, "", &Error{Code: http.StatusNotFound, Msg: "This link is unknown to scry. It may be mistyped, or scry restarted since it was made (open handoffs do not survive a restart): ask for a new one."}
	}
	if e.opened && again != "" && sha256.Sum256([]byte(again)) == e.cookie && e.v.State.Open() {
		v := e.v
		r.mu.Unlock()
		return v, "", nil
	}
	if !e.v.State.Open() {
		st := e.v.State
		r.mu.Unlock()
		return View{}, "", &Error{Code: http.StatusGone, Msg: fmt.Sprintf("This request for help has ended (%s); the link no longer works.", st)}
	}
	if e.opened {
		r.mu.Unlock()
		return View{}, "", &Error{Code: http.StatusGone, Msg: "This link has already been opened, in another browser; it works only once. Ask for a new one if that was not you."}
	}
	cookie, e.cookie = newSecret()
	e.opened = true
	e.v.State = Active
	close(e.changed)
	e.changed = make(chan struct{})
	v = e.v
	front := e.tab
	if front == "" {
		front = e.v.TargetID
	}
	r.mu.Unlock()

	r.log.Info("handoff active", "id", v.ID, "state", v.State, "from", Pending)
	r.emit("handoff.active", v)
	if front != "" && r.cfg.Browser != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := r.cfg.Browser.Activate(ctx, front); err != nil {
				r.log.Warn("handoff: cannot bring its page to the front", "id", v.ID, "target_id", front, "err", err)
			}
		}()
	}
	return v, cookie, nil
}

// byCookie finds the handoff whose cookie secret is cookie.
func (r *Registry) byCookie(id, cookie string) (*entry, bool) {
	if cookie == "" {
		return nil, false
	}
	hash := sha256.Sum256([]byte(cookie))
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.byID[id]
	if !ok || !e.opened || e.cookie != hash {
		return nil, false
	}
	return e, true
}

// finish ends a handoff as done, on the person's word.
func (r *Registry) finish(id, cookie string) (View, error) {
	if _, ok := r.byCookie(id, cookie); !ok {
		return View{}, errorf(http.StatusForbidden, "this browser holds no key to handoff %s", id)
	}
	return r.end(id, Done)
}
