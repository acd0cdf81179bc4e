// Package sessions reports login status from the cookies scry snapshots:
// one entry per site (registrable domain, eTLD+1; an IP stays itself) with
// its cookie counts and the earliest expiry among its persistent cookies.
// It serves GET /scry/v1/sessions on the agent door and the metric
// scry_site_cookie_expiry_seconds{site} for the sites in WATCH_SITES.
//
// Cookie values are never read into this package.
package sessions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/publicsuffix"
)

// Path is the endpoint on the agent door.
const Path = "/scry/v1/sessions"

// Cookie is the part of a CDP Network.Cookie this package reads.
type Cookie struct {
	Domain  string  `json:"domain"`
	Expires float64 `json:"expires"` // seconds since the epoch; -1 for a session cookie
	Session bool    `json:"session"`
}

// Snapshot is a set of cookies and when it was taken.
type Snapshot struct {
	At      time.Time `json:"saved"`
	Cookies []Cookie  `json:"cookies"`
}

// Source returns the latest cookies.
type Source func(ctx context.Context) (Snapshot, error)

// FileSource reads scry's snapshot file (PROFILE_DIR/.scry/cookies.json)
// with read; none yet (fs.ErrNotExist) is an empty snapshot.
func FileSource(read func() ([]byte, error)) Source {
	return func(context.Context) (Snapshot, error) {
		var s Snapshot
		b, err := read()
		if errors.Is(err, fs.ErrNotExist) {
			return s, nil
		}
		if err != nil {
			return s, fmt.Errorf("read the cookie snapshot: %w", err)
		}
		if err := json.Unmarshal(b, &s); err != nil {
			return s, fmt.Errorf("parse the cookie snapshot: %w", err)
		}
		return s, nil
	}
}

// Site is one registrable domain's cookies.
type Site struct {
	Site           string     `json:"site"`
	Cookies        int        `json:"cookies"`
	SessionCookies int        `json:"sessionCookies"`
	EarliestExpiry *time.Time `json:"earliestExpiry"`
}

// Status is the endpoint's answer.
type Status struct {
	Sites []Site `json:"sites"`
	// SnapshotAt is when the cookies were read (the snapshot last
	// changed), null before the first.
	SnapshotAt *time.Time `json:"snapshotAt"`
}

// SiteOf is the registrable domain of a cookie's domain.
func SiteOf(domain string) string {
	d := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(domain, "."), "."))
	if net.ParseIP(strings.Trim(d, "[]")) != nil {
		return strings.Trim(d, "[]")
	}
	if s, err := publicsuffix.EffectiveTLDPlusOne(d); err == nil {
		return s
	}
	return d // localhost, or a public suffix itself
}

// Summarize groups cookies by site, leaving out persistent cookies that
// have expired by now. Sites are sorted by name.
func Summarize(cs []Cookie, now time.Time) []Site {
	bySite := map[string]*Site{}
	for _, c := range cs {
		persistent := !c.Session && c.Expires > 0
		var exp time.Time
		if persistent {
			sec, frac := math.Modf(c.Expires)
			exp = time.Unix(int64(sec), int64(frac*1e9)).UTC().Truncate(time.Second)
			if !exp.After(now) {
				continue
			}
		}
		name := SiteOf(c.Domain)
		s := bySite[name]
		if s == nil {
			s = &Site{Site: name}
			bySite[name] = s
		}
		s.Cookies++
		if !persistent {
			s.SessionCookies++
			continue
		}
		if s.EarliestExpiry == nil || exp.Before(*s.EarliestExpiry) {
			s.EarliestExpiry = &exp
		}
	}
	out := make([]Site, 0, len(bySite))
	for _, s := range bySite {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b Site) int { return strings.Compare(a.Site, b.Site) })
	return out
}

// Reporter answers the endpoint and the metric from a Source.
type Reporter struct {
	Source Source
	// Watch lists the sites the metric covers (WATCH_SITES).
	Watch []string
}

// Status reads the source and summarizes it.
func (r *Reporter) Status(ctx context.Context) (Status, error) {
	snap, err := r.Source(ctx)
	if err != nil {
		return Status{Sites: []Site{}}, err
	}
	st := Status{Sites: Summarize(snap.Cookies, time.Now())}
	if !snap.At.IsZero() {
		at := snap.At.UTC()
		st.SnapshotAt = &at
	}
	return st, nil
}

// ServeHTTP answers GET /scry/v1/sessions.
func (r *Reporter) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use GET " + Path})
		return
	}
	st, err := r.Status(req.Context())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error() + "; scry's log may say more"})
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

var expiryDesc = prometheus.NewDesc("scry_site_cookie_expiry_seconds",
	"Seconds until the earliest expiry of a watched site's persistent cookies (WATCH_SITES); absent while the site has none.",
	[]string{"site"}, nil)

// Describe implements prometheus.Collector.
func (r *Reporter) Describe(ch chan<- *prometheus.Desc) { ch <- expiryDesc }

// Collect implements prometheus.Collector: one series per watched site
// with a persistent cookie.
func (r *Reporter) Collect(ch chan<- prometheus.Metric) {
	if len(r.Watch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := r.Status(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(expiryDesc, err)
		return
	}
	now := time.Now()
	for _, s := range st.Sites {
		if s.EarliestExpiry == nil || !slices.Contains(r.Watch, s.Site) {
			continue
		}
		ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, s.EarliestExpiry.Sub(now).Seconds(), s.Site)
	}
}
