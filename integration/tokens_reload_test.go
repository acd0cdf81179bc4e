package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dataplanelabs/scry/internal/scrytest"
)

// TestTokensFileReloadRevokesAndAdds: CDP_TOKENS_FILE is read again while
// scry runs. Rewriting it (as Kubernetes updates a mounted Secret: a new
// file renamed over) revokes a token, whose open connection to the real
// browser is closed and whose requests get 401 from then on, and adds one,
// which works, without a restart; the admin's connection goes on. A bad
// file afterwards keeps the tokens in use and says why in the log, and no
// token reaches the log.
func TestTokensFileReloadRevokesAndAdds(t *testing.T) {
	admin, agent, agent2 := newToken(t), newToken(t), newToken(t)
	path := filepath.Join(t.TempDir(), "tokens")
	write := func(lines ...string) {
		t.Helper()
		if err := os.WriteFile(path+".new", []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	write("ops admin "+admin, "bot agent "+agent)
	s := Start(t, Options{Env: map[string]string{"CDP_TOKENS_FILE": path}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	dial := func(tok string) *scrytest.CDP {
		t.Helper()
		c, err := scrytest.Dial(ctx, nil, browserWS(t, ctx, s, "", bearer(tok)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if err := c.Call(ctx, "", "Browser.getVersion", nil, nil); err != nil {
			t.Fatalf("Browser.getVersion before the reload: %v", err)
		}
		return c
	}
	adminConn, botConn := dial(admin), dial(agent)
	status := func(tok string) int {
		code, _, _, err := get(ctx, s.CDPURL()+"/json/version", bearer(tok))
		if err != nil {
			t.Fatal(err)
		}
		return code
	}

	write("ops admin "+admin, "bot2 agent "+agent2)
	waitFor(t, 30*time.Second, "the revoked token's connection closed", func() error {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		defer ccancel()
		if err := botConn.Call(cctx, "", "Browser.getVersion", nil, nil); err == nil {
			return fmt.Errorf("the connection still answers")
		}
		return nil
	})
	if err := adminConn.Call(ctx, "", "Browser.getVersion", nil, nil); err != nil {
		t.Errorf("the admin's connection after the reload: %v", err)
	}
	if code := status(agent); code != http.StatusUnauthorized {
		t.Errorf("the revoked token: GET /json/version = %d, want 401", code)
	}
	if code := status(agent2); code != http.StatusOK {
		t.Errorf("the added token: GET /json/version = %d, want 200", code)
	}
	bot2 := dial(agent2)
	var e error
	if e = bot2.Call(ctx, "", "Storage.getCookies", nil, nil); e == nil || !strings.Contains(e.Error(), "not allowed for role agent") {
		t.Errorf("the added agent token: Storage.getCookies = %v, want scry's refusal", e)
	}
	for _, want := range []string{"tokens reloaded", "closing a cdp connection: its token was revoked"} {
		if !s.HasLog(want) {
			t.Errorf("no %q in the log", want)
		}
	}

	write("ops admin "+admin, "bot2 agent "+agent2, "broken agent")
	waitFor(t, 30*time.Second, "the bad file reported", func() error {
		if !s.HasLog("CDP_TOKENS_FILE changed but cannot be used") {
			return fmt.Errorf("no error line yet")
		}
		return nil
	})
	if code := status(agent2); code != http.StatusOK {
		t.Errorf("after a bad file, the token in use: GET /json/version = %d, want 200", code)
	}
	if err := bot2.Call(ctx, "", "Browser.getVersion", nil, nil); err != nil {
		t.Errorf("after a bad file, the open connection: %v", err)
	}
	for _, tok := range []string{admin, agent, agent2} {
		if s.HasLog(tok) {
			t.Error("a token is in scry's log")
		}
	}
}
