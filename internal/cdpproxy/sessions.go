package cdpproxy

import (
	"bytes"
	"encoding/json"
	"sync"
)

// sessionPages tracks, for one scoped connection, which target each of
// its sessions is attached to and that target's URL, from the events
// Chromium sends the connection: Target.attachedToTarget (sent before the
// reply to Target.attachToTarget, and for every auto-attached target, so
// the client never learns a session scry has not seen), its
// detachedFromTarget, and targetInfoChanged when the client discovers
// targets. cdprole uses it to refuse an agent's actions on pages that are
// not web pages.
type sessionPages struct {
	mu sync.Mutex
	m  map[string]sessionPage
}

type sessionPage struct {
	targetID, url, typ string
}

// maxSessions bounds one connection's map; past it, new sessions are not
// tracked and count as unknown (then only scry's own discovery places
// their targets).
const maxSessions = 1 << 16

func newSessionPages() *sessionPages { return &sessionPages{m: map[string]sessionPage{}} }

var sessionEvents = [][]byte{
	[]byte(`{"method":"Target.attachedToTarget"`),
	[]byte(`{"method":"Target.detachedFromTarget"`),
	[]byte(`{"method":"Target.targetInfoChanged"`),
}

// isSessionEvent reports, from its first bytes, whether a message from
// Chromium is one sessionPages reads. Chromium writes "method" first in
// every event (cdprole.MayCarryCookies relies on the same).
func isSessionEvent(prefix []byte) bool {
	for _, e := range sessionEvents {
		if bytes.HasPrefix(prefix, e) {
			return true
		}
	}
	return false
}

// note records what an event says and returns it unchanged.
func (s *sessionPages) note(msg []byte) ([]byte, error) {
	var ev struct {
		Method string `json:"method"`
		Params struct {
			SessionID  string `json:"sessionId"`
			TargetInfo struct {
				ID   string `json:"targetId"`
				Type string `json:"type"`
				URL  string `json:"url"`
			} `json:"targetInfo"`
		} `json:"params"`
	}
	if err := json.Unmarshal(msg, &ev); err != nil {
		return nil, err
	}
	p := ev.Params
	s.mu.Lock()
	defer s.mu.Unlock()
	switch ev.Method {
	case "Target.attachedToTarget":
		if _, known := s.m[p.SessionID]; known || len(s.m) < maxSessions {
			s.m[p.SessionID] = sessionPage{targetID: p.TargetInfo.ID, url: p.TargetInfo.URL, typ: p.TargetInfo.Type}
		}
	case "Target.detachedFromTarget":
		delete(s.m, p.SessionID)
	case "Target.targetInfoChanged":
		for id, sp := range s.m {
			if sp.targetID == p.TargetInfo.ID {
				sp.url = p.TargetInfo.URL
				s.m[id] = sp
			}
		}
	}
	return msg, nil
}

// page returns the target and URL sessionID is attached to.
func (s *sessionPages) page(sessionID string) (targetID, url string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sp, ok := s.m[sessionID]
	return sp.targetID, sp.url, ok
}

// kind returns the type of the target sessionID is attached to ("page",
// "iframe", "worker" ...).
func (s *sessionPages) kind(sessionID string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sp, ok := s.m[sessionID]
	return sp.typ, ok
}
