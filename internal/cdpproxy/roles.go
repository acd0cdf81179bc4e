package cdpproxy

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/dataplanelabs/scry/internal/cdprole"
	"github.com/dataplanelabs/scry/internal/tokens"
)

// Who a request comes from when the door asks no token: everyone is admin.
var (
	anyone = tokens.Token{Role: cdprole.Admin}
	// noAuth is whoever uses the door without a token (CDP_NOAUTH_PORT),
	// which only trusted local clients reach.
	noAuth = tokens.Token{Name: "noauth", Role: cdprole.Admin}
)

// withLegacy returns set with CDP_TOKEN's token added as an admin token
// (unless set has it already, as the app's config does).
func withLegacy(set *tokens.Set, token string) *tokens.Set {
	if set == nil {
		set = &tokens.Set{}
	}
	set.AddLegacy(token)
	return set
}

// identify returns the token r carries, or false if the door asks for one
// and r has none that matches.
func (p *Proxy) identify(r *http.Request) (tokens.Token, bool) {
	set := p.tokensOf(r)
	switch {
	case noToken(r):
		return noAuth, true
	case set.Len() == 0:
		return anyone, true
	}
	return set.Match(RequestToken(r))
}

// filtered reports whether who's WebSocket connections are read command by
// command rather than spliced: those of scoped roles, and every one when
// the operator asked for an audit line per command.
func (p *Proxy) filtered(who tokens.Token) bool {
	return who.Role != cdprole.Admin || p.cfg.AuditMode == "commands"
}

// mayRequest checks an HTTP request (not a CDP command) against who's
// role: an observer only reads (the discovery lists, GETs of scry's own
// endpoints); an agent may also open, bring to front and close tabs, only
// on the URLs it may navigate to (cdprole.CheckURL). WebSocket upgrades
// are let through: their commands are checked one by one.
func mayRequest(who tokens.Token, r *http.Request) error {
	if who.Role == cdprole.Admin || isUpgrade(r) {
		return nil
	}
	if strings.HasPrefix(r.URL.Path, "/scry/") || r.URL.Path == "/mcp" {
		if who.Role == cdprole.Observer && r.Method != http.MethodGet && r.Method != http.MethodHead {
			return fmt.Errorf("token %q has role observer, which only reads: %s %s is refused", who.Name, r.Method, r.URL.Path)
		}
		return nil
	}
	switch cmd := discoveryCommand(r.URL.EscapedPath()); cmd {
	case "list", "version", "protocol":
		return nil
	case "new", "activate", "close":
		if who.Role == cdprole.Observer {
			return fmt.Errorf("token %q has role observer, which only reads: /json/%s is refused", who.Name, cmd)
		}
		if cmd == "new" {
			return checkNewTab(r.URL.RawQuery)
		}
		return nil
	}
	return fmt.Errorf("token %q has role %s: %s is not one of the CDP discovery endpoints it may use (/json/list, /json/version, /json/protocol, /json/new, /json/activate, /json/close)", who.Name, who.Role, r.URL.Path)
}

// checkNewTab checks the URL /json/new would open: its query, as sent and
// unescaped (Chrome unescapes it), less scry's token.
func checkNewTab(rawQuery string) error {
	q := rawQuery
	if i := lastTokenSegment(q); i >= 0 {
		q = q[:i]
	}
	if err := cdprole.CheckURL(q); err != nil {
		return fmt.Errorf("/json/new: %w", err)
	}
	if u, err := url.QueryUnescape(q); err == nil && u != q {
		if err := cdprole.CheckURL(u); err != nil {
			return fmt.Errorf("/json/new: %w", err)
		}
	}
	return nil
}

// lastTokenSegment returns where the trailing "&token=" segment of a
// /json/new query starts, -1 if there is none (see queryToken).
func lastTokenSegment(q string) int {
	for i := len(q) - 1; i >= 0; i-- {
		if q[i] == '&' {
			if len(q) > i+7 && q[i+1:i+7] == "token=" {
				return i
			}
			return -1
		}
	}
	if len(q) >= 6 && q[:6] == "token=" {
		return 0
	}
	return -1
}
