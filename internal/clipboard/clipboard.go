// Package clipboard makes text a VNC viewer pastes (noVNC's clipboard
// panel, RFB ClientCutText) pasteable in the remote browser with Ctrl+V.
//
// Why scry does it and not x11vnc: Debian's x11vnc 0.9.16 logs "Set
// CLIPBOARD" for received text, but answers no X selection request for it
// (xclip -o fails for CLIPBOARD and PRIMARY alike), so Chromium pastes
// nothing. An Owner is a tiny X client on the display that owns CLIPBOARD
// and PRIMARY with the last pasted text and answers the requests Chromium
// (and any X client) makes: TARGETS, UTF8_STRING, STRING, TEXT and
// text/plain. x11vnc then runs with -nosetclipboard -nosetprimary so that
// it does not take the selections away.
package clipboard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"sync"
	"unicode/utf8"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

// MaxText bounds what an Owner hands out in one piece. Larger texts would
// need the X INCR protocol; a login form never needs that much. The X
// server's request limit may lower it (see Owner.max).
const MaxText = 256 << 10

// changePropertyHeader is the fixed part of a ChangeProperty request.
const changePropertyHeader = 24

func init() {
	// xgb logs to stderr by default; scry's errors carry the same facts.
	xgb.Logger = log.New(io.Discard, "", 0)
}

// Owner owns the CLIPBOARD and PRIMARY selections of one display.
type Owner struct {
	conn *xgb.Conn
	win  xproto.Window
	log  *slog.Logger

	clipboard, primary, targets, utf8String, text, textPlain, textPlainUTF8 xproto.Atom

	// max is the largest text one ChangeProperty can carry: xgb writes
	// request lengths in 16 bits and does not use BIG-REQUESTS, so a
	// longer property would wrap the length and turn the text into X
	// requests.
	max int

	pending chan string // the latest paste not yet set; see Paste

	mu     sync.Mutex
	data   []byte // UTF-8; nil before the first paste
	closed bool
}

// Open connects to display (":99") and creates the Owner's window. log
// receives one record per paste and per failure; nil discards them.
func Open(display string, log *slog.Logger) (*Owner, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	conn, err := xgb.NewConnDisplay(display)
	if err != nil {
		return nil, fmt.Errorf("clipboard: connect to display %s: %w", display, err)
	}
	o := &Owner{conn: conn, log: log, pending: make(chan string, 1)}
	o.max = min(MaxText, int(xproto.Setup(conn).MaximumRequestLength)*4-changePropertyHeader)
	if err := o.setup(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clipboard: %w", err)
	}
	return o, nil
}

func (o *Owner) setup() error {
	for _, a := range []struct {
		name string
		atom *xproto.Atom
	}{
		{"CLIPBOARD", &o.clipboard}, {"PRIMARY", &o.primary}, {"TARGETS", &o.targets},
		{"UTF8_STRING", &o.utf8String}, {"TEXT", &o.text}, {"text/plain", &o.textPlain},
		{"text/plain;charset=utf-8", &o.textPlainUTF8},
	} {
		r, err := xproto.InternAtom(o.conn, false, uint16(len(a.name)), a.name).Reply()
		if err != nil {
			return fmt.Errorf("intern atom %s: %w", a.name, err)
		}
		*a.atom = r.Atom
	}
	id, err := o.conn.NewId()
	if err != nil {
		return fmt.Errorf("new window id: %w", err)
	}
	o.win = xproto.Window(id)
	screen := xproto.Setup(o.conn).DefaultScreen(o.conn)
	// An unmapped 1x1 input-only window: it exists only to own selections
	// (SelectionRequest and SelectionClear reach it without an event mask).
	err = xproto.CreateWindowChecked(o.conn, 0, o.win, screen.Root, 0, 0, 1, 1, 0,
		xproto.WindowClassInputOnly, 0, 0, nil).Check()
	if err != nil {
		return fmt.Errorf("create window: %w", err)
	}
	return nil
}

// Set makes text the content of CLIPBOARD and PRIMARY. RFB cut text is
// Latin-1 (RFC 6143); pass it through Latin1ToUTF8 first.
func (o *Owner) Set(text string) error {
	if len(text) > o.max {
		return fmt.Errorf("clipboard: a %d-byte paste is more than the %d bytes this clipboard holds; paste less at a time", len(text), o.max)
	}
	o.mu.Lock()
	o.data = []byte(text)
	o.mu.Unlock()
	for _, sel := range []xproto.Atom{o.clipboard, o.primary} {
		// CurrentTime: this is the only owner scry runs on the display.
		if err := xproto.SetSelectionOwnerChecked(o.conn, o.win, sel, xproto.TimeCurrentTime).Check(); err != nil {
			return fmt.Errorf("clipboard: take the selection: %w", err)
		}
		r, err := xproto.GetSelectionOwner(o.conn, sel).Reply()
		if err != nil {
			return fmt.Errorf("clipboard: check the selection owner: %w", err)
		}
		if r.Owner != o.win {
			return errors.New("clipboard: another X client kept the selection")
		}
	}
	o.log.Info("clipboard set from a viewer's paste", "bytes", len(text))
	return nil
}

// Paste queues text for Set without waiting for the X server, so a viewer's
// input never waits on it; a newer paste replaces one not yet set. Run
// sets it and logs a failure.
func (o *Owner) Paste(text string) {
	for {
		select {
		case o.pending <- text:
			return
		default:
		}
		select {
		case <-o.pending: // drop the older one
		default:
		}
	}
}

// Run answers selection requests and sets queued pastes until ctx ends,
// Close is called or the X connection breaks. It must run for the
// selections to be of any use.
func (o *Owner) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, o.Close)
	defer stop()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case text := <-o.pending:
				if err := o.Set(text); err != nil {
					o.log.Warn("a viewer's paste did not reach the remote clipboard", "err", err)
				}
			case <-done:
				return
			}
		}
	}()
	for {
		ev, xerr := o.conn.WaitForEvent()
		if ev == nil && xerr == nil {
			o.mu.Lock()
			closed := o.closed
			o.mu.Unlock()
			if closed || ctx.Err() != nil {
				return nil
			}
			return errors.New("clipboard: the X connection closed")
		}
		if xerr != nil {
			o.log.Debug("clipboard: X error", "err", xerr)
			continue
		}
		switch e := ev.(type) {
		case xproto.SelectionRequestEvent:
			o.answer(e)
		case xproto.SelectionClearEvent:
			// Somebody copied in the remote browser: the selection is
			// theirs now, and the X server sends them the requests.
		}
	}
}

// Close closes the X connection; Run returns nil.
func (o *Owner) Close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.conn.Close()
}

// answer handles one SelectionRequest per ICCCM 2.2: write the data to the
// requestor's property, then tell it with a SelectionNotify (property None
// when refused).
func (o *Owner) answer(e xproto.SelectionRequestEvent) {
	o.mu.Lock()
	data := o.data
	o.mu.Unlock()
	prop := e.Property
	if prop == xproto.AtomNone {
		prop = e.Target // obsolete clients
	}
	ok := data != nil && (e.Selection == o.clipboard || e.Selection == o.primary)
	if ok {
		var err error
		switch e.Target {
		case o.targets:
			atoms := []xproto.Atom{o.targets, o.utf8String, xproto.AtomString, o.text, o.textPlain, o.textPlainUTF8}
			b := make([]byte, 4*len(atoms))
			for i, a := range atoms {
				xgb.Put32(b[4*i:], uint32(a))
			}
			err = xproto.ChangePropertyChecked(o.conn, xproto.PropModeReplace, e.Requestor, prop,
				xproto.AtomAtom, 32, uint32(len(atoms)), b).Check()
		case o.utf8String, o.textPlainUTF8:
			err = o.put(e.Requestor, prop, e.Target, data)
		case xproto.AtomString, o.text, o.textPlain:
			err = o.put(e.Requestor, prop, xproto.AtomString, utf8ToLatin1(data))
		default:
			ok = false
		}
		if err != nil {
			o.log.Debug("clipboard: answer a selection request", "err", err)
			ok = false
		}
	}
	if !ok {
		prop = xproto.AtomNone
	}
	n := xproto.SelectionNotifyEvent{
		Time: e.Time, Requestor: e.Requestor, Selection: e.Selection, Target: e.Target, Property: prop,
	}
	xproto.SendEvent(o.conn, false, e.Requestor, 0, string(n.Bytes()))
}

func (o *Owner) put(w xproto.Window, prop, typ xproto.Atom, b []byte) error {
	return xproto.ChangePropertyChecked(o.conn, xproto.PropModeReplace, w, prop, typ, 8, uint32(len(b)), b).Check()
}

// Latin1ToUTF8 decodes RFB cut text, which RFC 6143 defines as ISO 8859-1.
func Latin1ToUTF8(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// utf8ToLatin1 is for STRING requests: characters outside Latin-1 become '?'.
func utf8ToLatin1(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		b = b[n:]
		if r > 0xff {
			r = '?'
		}
		out = append(out, byte(r))
	}
	return out
}
