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
	admin, agent, observer := dial(adminTok), dial(agentTok), dial(observerTok)
	for _, c := range []*websocket.Conn{admin, agent, observer} {
		if got := call(t, c, `{"id":1,"method":"DOM.getDocument"}`); !strings.Contains(got, `"id":1`) {
			t.Fatalf("before the reload: %s", got)
		}
	}

	const newTok = "new-agent-token-0123456789"
	// bot (agent) revoked, watch (observer) now an agent, ops kept, bot2 new.
	set, err := tokens.Parse(strings.NewReader("ops admin " + adminTok + "\nwatch agent " + observerTok + "\nbot2 agent " + newTok + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	b.p.SetTokens(set)

	for name, c := range map[string]*websocket.Conn{"revoked agent": agent, "re-roled observer": observer} {
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
}
