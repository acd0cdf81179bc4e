// Package mcpdoor is scry's MCP server: /mcp on the agent door, Streamable
// HTTP (stateless), behind that door's Host, token and Origin checks. Its
// tools let an LLM agent ask for a person and read the login status:
//
//	request_human(reason, url?, targetId?, timeoutSeconds?)  a handoff, link included
//	wait_for_human(id, waitSeconds ≤ 50)                      its state
//	login_status()                                            the sessions list
package mcpdoor

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dataplanelabs/scry/internal/handoff"
	"github.com/dataplanelabs/scry/internal/tokens"
)

// MaxWait bounds wait_for_human: below the 60 s many MCP clients give a
// tool call.
const MaxWait = 50 * time.Second

// maxBody bounds an MCP request body.
const maxBody = 64 << 10

// hostHeader carries the Host the client used into the tool handlers
// (which see only the request's headers); a client's own is replaced.
const hostHeader = "X-Scry-Mcp-Host"

// Config configures the MCP door.
type Config struct {
	Version  string
	Handoffs *handoff.Registry
	// Links builds the start of handoff links for a request (see
	// handoff.API.LinkBase).
	Links func(r *http.Request) string
	// LinkPolicy says who may see a new handoff's link.
	LinkPolicy handoff.LinkPolicy
	// Sessions returns the login status (login_status's answer).
	Sessions func(ctx context.Context) (any, error)
	Logger   *slog.Logger
}

// New returns the /mcp handler.
func New(cfg Config) http.Handler {
	srv := mcp.NewServer(&mcp.Implementation{Name: "scry", Version: cfg.Version}, &mcp.ServerOptions{
		Instructions: "scry is a persistent, logged-in Chromium that agents drive over CDP. " +
			"When a page needs a person (a login, MFA, a captcha), call request_human with the reason, " +
			"send the person the returned url, then call wait_for_human until the state is done, expired or cancelled.",
	})
	mcp.AddTool(srv, &mcp.Tool{
		Name: "request_human",
		Description: "Ask a person to take over the browser for a moment (log in, pass MFA or a captcha). " +
			"Returns the handoff with its one-time link (url) for the person; the link is shown only here and in the webhook, " +
			"and to an agent token not here: scry sends it to people through its webhook. " +
			"Then call wait_for_human with its id.",
	}, func(ctx context.Context, req *mcp.CallToolRequest, in requestHumanIn) (*mcp.CallToolResult, any, error) {
		r := &http.Request{Host: req.Extra.Header.Get(hostHeader), Header: req.Extra.Header}
		show, err := cfg.LinkPolicy.ForRole(req.Extra.Header.Get(tokens.RoleHeader))
		if err != nil {
			return nil, nil, err
		}
		v, err := cfg.Handoffs.Create(ctx, handoff.Request{
			Reason: in.Reason, URL: in.URL, TargetID: in.TargetID, TimeoutSeconds: in.TimeoutSeconds,
		}, cfg.Links(r))
		if err != nil {
			return nil, nil, err
		}
		if !show {
			v.URL = "" // sent to the webhook only
		}
		return jsonResult(v)
	})
	mcp.AddTool(srv, &mcp.Tool{
		Name: "wait_for_human",
		Description: fmt.Sprintf("Wait up to waitSeconds (at most %d, default %d) for a handoff's state to change, and return it: "+
			"pending (link not opened yet), active (a person is on it), done, expired or cancelled. Call again while it is pending or active.",
			int(MaxWait.Seconds()), int(MaxWait.Seconds())),
	}, func(ctx context.Context, req *mcp.CallToolRequest, in waitIn) (*mcp.CallToolResult, any, error) {
		wait := MaxWait
		if in.WaitSeconds != nil {
			wait = time.Duration(*in.WaitSeconds) * time.Second
			if wait < 0 || wait > MaxWait {
				return nil, nil, fmt.Errorf("waitSeconds is %d; it must be between 0 and %d", *in.WaitSeconds, int(MaxWait.Seconds()))
			}
		}
		v, err := cfg.Handoffs.Wait(ctx, in.ID, wait)
		if err != nil {
			return nil, nil, err
		}
		return jsonResult(v)
	})
	mcp.AddTool(srv, &mcp.Tool{
		Name: "login_status",
		Description: "List the sites the browser holds cookies for (one per registrable domain), with cookie counts and " +
			"the earliest expiry of their persistent cookies: a site with none is probably logged out.",
	}, func(ctx context.Context, req *mcp.CallToolRequest, in struct{}) (*mcp.CallToolResult, any, error) {
		if cfg.Sessions == nil {
			return nil, nil, fmt.Errorf("login status is not available on this scry")
		}
		s, err := cfg.Sessions(ctx)
		if err != nil {
			return nil, nil, err
		}
		return jsonResult(s)
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{
		Stateless: true,
		// scry's own Host policy (CDP_ALLOWED_HOSTS) already ran.
		DisableLocalhostProtection: true,
		MaxRequestBodyBytes:        maxBody,
		Logger:                     cfg.Logger,
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set(hostHeader, r.Host)
		h.ServeHTTP(w, r)
	})
}

type requestHumanIn struct {
	Reason         string `json:"reason" jsonschema:"what the person should do, shown to them (at most 500 characters)"`
	URL            string `json:"url,omitempty" jsonschema:"a page to open in a new tab first (http or https)"`
	TargetID       string `json:"targetId,omitempty" jsonschema:"a CDP target id to bring to the front when the person arrives"`
	TimeoutSeconds *int   `json:"timeoutSeconds,omitempty" jsonschema:"how long the link stays valid: 10 to 86400 seconds, default 900"`
}

type waitIn struct {
	ID          string `json:"id" jsonschema:"the handoff's id, from request_human"`
	WaitSeconds *int   `json:"waitSeconds,omitempty" jsonschema:"how long to wait for a change, at most 50 seconds (default 50)"`
}

func jsonResult(v any) (*mcp.CallToolResult, any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, nil, err
	}
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(b)}}}, nil, nil
}
