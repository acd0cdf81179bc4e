package app

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dataplanelabs/scry/internal/cookies"
	"github.com/dataplanelabs/scry/internal/handoff"
	"github.com/dataplanelabs/scry/internal/mcpdoor"
	"github.com/dataplanelabs/scry/internal/profile"
	"github.com/dataplanelabs/scry/internal/sessions"
	"github.com/dataplanelabs/scry/internal/webhook"
)

// handoffs are the parts of "ask for a person": the registry, its two
// sides (the agent's API and MCP on CDP_PORT, the person's link on
// NOVNC_PORT), the webhook and the login status.
type handoffs struct {
	reg      *handoff.Registry
	human    *handoff.Human
	api      *handoff.API
	sessions *sessions.Reporter
	hook     *webhook.Sender
	mcp      http.Handler
}

func (s *scry) newHandoffs() *handoffs {
	cfg := s.cfg
	log := s.log.With("component", "handoff")
	h := &handoffs{}
	var onEvent func(handoff.Event)
	if cfg.HandoffWebhookURL != "" {
		h.hook = webhook.New(cfg.HandoffWebhookURL, log, webhook.Options{})
		onEvent = func(ev handoff.Event) { h.hook.Send(ev.Name+" "+ev.Handoff.ID, handoff.NewNotification(ev)) }
	}
	h.reg = handoff.New(handoff.Config{
		Browser: &handoff.DevTools{Addr: s.internalCDP(), Client: &http.Client{Timeout: 10 * time.Second}},
		Logger:  log,
		OnEvent: onEvent,
	})
	h.human = &handoff.Human{Registry: h.reg}
	links := handoff.LinkPolicy{Webhook: cfg.HandoffWebhookURL != ""}
	h.api = &handoff.API{Registry: h.reg, BaseURL: cfg.HandoffBaseURL, HumanPort: func() int { return s.boundPort(s.novncDoor, cfg.NoVNCPort) }, Links: links}

	// Login status from the snapshots; without them, from the browser.
	// Read as the cookie store writes it: through profile.Dir, no links
	// followed.
	src := sessions.FileSource(func() ([]byte, error) {
		uid, gid := s.childIDs()
		pd, err := profile.OpenDir(cfg.ProfileDir, uid, gid)
		if err != nil {
			return nil, err
		}
		defer pd.Close()
		return pd.ReadFile(cookies.FileName, 64<<20)
	})
	if !cfg.SessionCookies {
		src = func(ctx context.Context) (sessions.Snapshot, error) {
			var snap sessions.Snapshot
			if s.bconn == nil {
				return snap, errors.New("chromium is not ready yet")
			}
			c, err := s.bconn.Get(ctx)
			if err != nil {
				return snap, err
			}
			err = c.Call(ctx, "Storage.getCookies", nil, &snap)
			snap.At = time.Now()
			return snap, err
		}
	}
	h.sessions = &sessions.Reporter{Source: src, Watch: cfg.WatchSites}
	h.mcp = mcpdoor.New(mcpdoor.Config{
		Version: Version, Handoffs: h.reg, Links: h.api.LinkBase, LinkPolicy: links, Logger: log,
		Sessions: func(ctx context.Context) (any, error) { return h.sessions.Status(ctx) },
	})
	return h
}

// agentRoutes are mounted on CDP_PORT behind its token.
func (h *handoffs) agentRoutes() map[string]http.Handler {
	return map[string]http.Handler{
		handoff.Prefix:       h.api,
		handoff.Prefix + "/": h.api,
		sessions.Path:        h.sessions,
		"/mcp":               h.mcp,
		"/scry/": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			handoff.WriteError(w, http.StatusNotFound, "no such endpoint "+r.URL.Path+": scry's API is "+handoff.Prefix+" and "+sessions.Path)
		}),
	}
}

func (h *handoffs) collectors() []prometheus.Collector {
	cs := append(h.reg.Collectors(), h.sessions)
	if h.hook != nil {
		cs = append(cs, h.hook.Collectors()...)
	}
	return cs
}

// close cuts the viewers handoffs let in and gives up on webhooks still
// retrying: open handoffs do not survive a restart.
func (h *handoffs) close() {
	h.reg.Close()
	if h.hook != nil {
		h.hook.Close()
	}
}
