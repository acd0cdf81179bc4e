package cdpproxy

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dataplanelabs/scry/internal/tokens"
)

// SetTokens (CDP_TOKENS_FILE read again): a revoked token's open
// connection is closed at once, whether spliced (admin) or read command by
// command (agent); a token kept keeps its connection; a new token works
// without a restart, a revoked one is refused from then on, and a token
// given another role loses its connection (it was opened under the old
// role).
func TestSetTokensRevokesOpenConnections(t *testing.T) {
	b, _ := scopedBridge(t, "summary")
	dial := func(tok string) *websocket.Conn {
		t.Helper()
		c, _, err := b.dial(t, "ws://"+b.public()+"/devtools/page/P1", bearerHeader(tok))
		if err != nil {
			t.Fatalf("dial with %s: %v", tok[:5], err)
		}
		return c
	}
	const admin2Tok = "second-admin-token-0123456789"
	set0, err := tokens.Parse(strings.NewReader("ops admin " + adminTok + "\nops2 admin " + admin2Tok + "\nbot agent " + agentTok + "\nwatch observer " + observerTok + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	b.p.SetTokens(set0)
	admin, admin2, agent, observer := dial(adminTok), dial(admin2Tok), dial(agentTok), dial(observerTok)
	for _, c := range []*websocket.Conn{admin, admin2, agent, observer} {
		if got := call(t, c, `{"id":1,"method":"DOM.getDocument"}`); !strings.Contains(got, `"id":1`) {
			t.Fatalf("before the reload: %s", got)
		}
	}

	const newTok = "new-agent-token-0123456789"
	// bot (agent) and ops2 (admin, spliced) revoked, watch (observer) now
	// an agent, ops kept, bot2 new.
	set, err := tokens.Parse(strings.NewReader("ops admin " + adminTok + "\nwatch agent " + observerTok + "\nbot2 agent " + newTok + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	b.p.SetTokens(set)

	for name, c := range map[string]*websocket.Conn{"revoked agent": agent, "re-roled observer": observer, "revoked admin (spliced)": admin2} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _, err := c.Read(ctx)
		timedOut := ctx.Err() != nil
		cancel()
		if err == nil || timedOut {
			t.Errorf("%s: the connection is still open after the reload (read: %v)", name, err)
		}
	}
	if got := call(t, admin, `{"id":2,"method":"DOM.getDocument"}`); !strings.Contains(got, `"id":2`) {
		t.Errorf("the kept admin token's connection after the reload: %s", got)
	}
	waitFor(t, "one connection left open", func() bool { return b.p.Open() == 1 })

	if _, resp, err := b.dial(t, "ws://"+b.public()+"/devtools/page/P1", bearerHeader(agentTok)); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the revoked token after the reload: %v %v, want 401", resp, err)
	}
	c := dial(newTok)
	got := call(t, c, `{"id":3,"method":"Storage.getCookies"}`)
	if !strings.Contains(got, "not allowed for role agent") {
		t.Errorf("the new agent token: %s, want scry's refusal of Storage.getCookies", got)
	}
	if code, _ := b.get(t, b.public(), "/json/version", bearerHeader(newTok)); code != http.StatusOK {
		t.Errorf("GET /json/version with the new token: %d", code)
	}
	before := len(b.p.retired)
	b.p.SetTokens(&tokens.Set{})
	if len(b.p.retired) != before || b.p.tokenSet().Len() == 0 {
		t.Error("SetTokens took an empty set: the door would ask no token")
	}
}

// A request is served with the token set it was checked against: a
// token revoked between the check and the forwarding is still stripped
// from the query Chromium gets (on /json/new it would otherwise become
// part of the URL the tab opens, and reach that site).
func TestRequestKeepsTheTokenSetItWasCheckedAgainst(t *testing.T) {
	b, _ := scopedBridge(t, "summary")
	r, err := http.NewRequest(http.MethodPut, "http://"+b.public()+"/json/new?https://x.example/&token="+agentTok, nil)
	if err != nil {
		t.Fatal(err)
	}
	r = r.WithContext(context.WithValue(r.Context(), tokenSetKey{}, b.p.tokenSet()))
	if who, ok := b.p.identify(r); !ok || who.Name != "bot" {
		t.Fatalf("identify = %+v %v", who, ok)
	}
	set, err := tokens.Parse(strings.NewReader("ops admin " + adminTok + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	b.p.SetTokens(set)
	if out := b.p.outgoing(r); out.URL.RawQuery != "https://x.example/" {
		t.Errorf("forwarded query %q, want https://x.example/ (the token stripped)", out.URL.RawQuery)
	}
	if q := b.p.tokenQuery(r); q.Get("token") != agentTok {
		t.Errorf("discovery hands back %v, want the token the request came with", q)
	}
}
