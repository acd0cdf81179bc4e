package mcpdoor

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dataplanelabs/scry/internal/handoff"
)

// TestTools: the three tools, listed and called with the SDK's client;
// request_human builds the link from the host the client used.
func TestTools(t *testing.T) {
	reg := handoff.New(handoff.Config{})
	defer reg.Close()
	h := New(Config{
		Version: "test", Handoffs: reg,
		Links:    func(r *http.Request) string { return handoff.LinkBase(r, 6080) },
		Sessions: func(context.Context) (any, error) { return map[string]any{"sites": []any{}}, nil },
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sess, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	tools, err := sess.ListTools(ctx, nil)
	if err != nil || len(tools.Tools) != 3 {
		t.Fatalf("tools %v %v", tools, err)
	}
	call := func(name string, args map[string]any) (string, bool) {
		t.Helper()
		res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return res.Content[0].(*mcp.TextContent).Text, res.IsError
	}
	out, isErr := call("request_human", map[string]any{"reason": "captcha"})
	var v handoff.View
	if isErr || json.Unmarshal([]byte(out), &v) != nil || !strings.HasPrefix(v.URL, "http://127.0.0.1:6080/h/") {
		t.Fatalf("request_human: %s", out)
	}
	if out, isErr := call("wait_for_human", map[string]any{"id": v.ID, "waitSeconds": 0}); isErr || !strings.Contains(out, `"pending"`) {
		t.Errorf("wait_for_human: %s", out)
	}
	if out, isErr := call("wait_for_human", map[string]any{"id": v.ID, "waitSeconds": 51}); !isErr {
		t.Errorf("wait_for_human 51 s: %s, want an error", out)
	}
	if out, isErr := call("request_human", map[string]any{"reason": "x", "timeoutSeconds": 5}); !isErr || !strings.Contains(out, "timeoutSeconds") {
		t.Errorf("request_human timeout 5: %s", out)
	}
	if out, isErr := call("login_status", nil); isErr || out != `{"sites":[]}` {
		t.Errorf("login_status: %s", out)
	}
}
