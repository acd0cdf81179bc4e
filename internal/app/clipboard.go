package app

import (
	"context"

	"github.com/dataplanelabs/scry/internal/clipboard"
)

// startClipboard makes viewers' pastes reach the remote X clipboard. It is
// not fatal: without it, typing still works and only Ctrl+V of pasted text
// does not.
func (s *scry) startClipboard() {
	log := s.log.With("component", "clipboard")
	o, err := clipboard.Open(s.cfg.Display, log)
	if err != nil {
		log.Warn("text pasted in noVNC cannot reach the remote browser's clipboard (typing still works)", "err", err)
		return
	}
	s.clip.Store(o)
	go func() {
		if err := o.Run(context.Background()); err != nil {
			log.Warn("clipboard stopped; pastes from noVNC no longer reach the remote browser", "err", err)
		}
	}()
}

// onCutText is the human door's paste hook. The text is never logged: a
// paste is often a password.
func (s *scry) onCutText(text []byte) {
	if o := s.clip.Load(); o != nil {
		o.Paste(clipboard.Latin1ToUTF8(text))
	}
}

func (s *scry) stopClipboard() {
	if o := s.clip.Swap(nil); o != nil {
		o.Close()
	}
}
