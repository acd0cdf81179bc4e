package cdpproxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/dataplanelabs/scry/internal/cdprole"
	"github.com/dataplanelabs/scry/internal/relay"
	"github.com/dataplanelabs/scry/internal/tokens"
	"github.com/dataplanelabs/scry/internal/wsframe"
)

// The connections of agent and observer tokens are not spliced: scry reads
// the client's WebSocket frames, peeks at each command's method (and its
// URL, for navigations and new tabs), and forwards the command only if the
// role may send it. A refused command is answered by scry, with the
// command's id and sessionId, in a frame of its own put between two of
// Chromium's frames; the connection goes on. From Chromium to the client,
// frames pass through whole, but the events that can carry cookie values
// (raw request and response headers) are redacted first.
//
// The upgrade reaches Chromium without Sec-WebSocket-Extensions, so no
// compression is negotiated and every frame can be read as it is.

const (
	// maxCommand bounds one command from a scoped client. Playwright sends
	// files of up to 50 MB, base64-encoded, inside one command.
	maxCommand = 100 << 20
	// maxRedacted bounds an event scry holds whole to redact it; the
	// header events are a few kilobytes.
	maxRedacted = 64 << 20
	// wholeFrame is the size up to which a frame from Chromium is read
	// whole and written in one call; larger ones are copied through.
	wholeFrame = 64 << 10
	// peekLen is how much of a frame from Chromium decides whether it is
	// an event to redact.
	peekLen = 128
	// DefaultCommandMemory is Config.CommandMemory's default: room for
	// two of the largest commands at once (each held twice while read),
	// and many ordinary ones; without a bound, 128 connections could
	// each hold 200 MiB and have the container killed for memory.
	DefaultCommandMemory = 512 << 20
)

// conn names one CDP connection for the logs.
type conn struct {
	id  uint64
	who tokens.Token
	log *slog.Logger
	// page is the target of a page's own WebSocket (/devtools/page/ID),
	// "" on the browser's.
	page string
}

// filterConn is one scoped (or audited) connection.
type filterConn struct {
	p       *Proxy
	c       conn
	policy  cdprole.Policy
	client  net.Conn
	backend net.Conn
	audit   *auditTrail
	// sessions are the pages this connection's sessions are attached to,
	// from the events Chromium sends it.
	sessions *sessionPages

	wmu sync.Mutex // frames to the client: Chromium's and scry's replies
}

type direction struct {
	name  string
	bytes int64
	err   error
}

// filter relays one connection command by command until both directions
// are done, as splice does for admin connections. It returns the byte
// counts and why it ended.
func (p *Proxy) filter(c conn, client net.Conn, clientBuf *bufio.Reader, backend net.Conn, backendBuf *bufio.Reader) (up, down int64, reason string) {
	// Raw reads and writes, as splice's copy does (relay.Raw): through
	// net.Conn every message would wake the runtime's sysmon, which costs
	// the round trip more than reading the commands does.
	client, backend = relay.Raw(client), relay.Raw(backend)
	clientBuf = rawReader(clientBuf, client)
	backendBuf = rawReader(backendBuf, backend)
	f := &filterConn{
		p: p, c: c, client: client, backend: backend,
		policy:   cdprole.Policy{Role: c.who.Role, DownloadDir: p.cfg.DownloadDir, PersonHasControl: p.cfg.PersonHasControl, Target: c.page},
		audit:    newAuditTrail(p, c),
		sessions: newSessionPages(),
	}
	if c.who.Role != cdprole.Admin {
		f.policy.PageURL = f.pageURL
		if p.cfg.TargetHistory != nil {
			f.policy.TabHistory = f.tabHistory
		}
		if p.cfg.TargetShown != nil {
			f.policy.ShownBrowserPage = f.shownBrowserPage
		}
	}
	// ctx ends a wait for command memory once either direction is done.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	done := make(chan direction, 2)
	go func() {
		n, err := f.upstream(ctx, clientBuf)
		done <- direction{"client->chromium", n, err}
	}()
	go func() {
		n, err := f.downstream(backendBuf)
		done <- direction{"chromium->client", n, err}
	}()
	first := <-done
	cancel()
	// Pass the end on, as splice does: the other side normally follows.
	if first.name == "client->chromium" {
		closeWrite(backend)
	} else {
		closeWrite(client)
	}
	grace := time.NewTimer(spliceGrace)
	var second direction
	select {
	case second = <-done:
		grace.Stop()
	case <-grace.C:
		client.Close()
		backend.Close()
		second = <-done
	}
	client.Close()
	backend.Close()
	up, down = first.bytes, second.bytes
	if first.name == "chromium->client" {
		up, down = second.bytes, first.bytes
	}
	reason = first.name + " ended"
	if first.err != nil && !errors.Is(first.err, io.EOF) && !errors.Is(first.err, net.ErrClosed) {
		reason = first.name + ": " + first.err.Error()
	}
	f.audit.close(time.Since(start))
	return up, down, reason
}

// rawReader reads what br has buffered, then c.
func rawReader(br *bufio.Reader, c net.Conn) *bufio.Reader {
	return bufio.NewReaderSize(io.MultiReader(bytes.NewReader(buffered(br)), c), 32<<10)
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	c.Close()
}

// upstream reads the client's frames, checks each command and forwards it
// to Chromium or answers it. It returns the bytes sent to Chromium.
func (f *filterConn) upstream(ctx context.Context, br *bufio.Reader) (int64, error) {
	cfg := wsframe.ReaderConfig{RequireMask: true, MaxMessage: maxCommand}
	if f.policy.Role != cdprole.Admin {
		cfg.Reserve = func(n, held int64) error { return f.p.reserveCommand(ctx, n, held) }
		cfg.Release = f.p.cmdMem.Release
	}
	r := wsframe.NewReader(br, cfg)
	// A command that could not be passed on (Chromium's side closed)
	// gives its memory back too.
	defer r.Release()
	var sent int64
	for {
		m, err := r.Next()
		if err != nil {
			var pe *wsframe.ProtocolError
			switch {
			case errors.Is(err, errCommandMemory):
				f.c.log.Warn("the memory for scoped tokens' commands is used up, and this connection was halfway through a large or fragmented command; closing it",
					"command_memory_mib", f.p.cfg.CommandMemory>>20)
				f.closeClient(wsframe.CloseTryAgainLater, "scry: "+errCommandMemory.Error())
			case errors.As(err, &pe):
				f.c.log.Warn("cdp client broke the WebSocket protocol; closing", "err", pe.Reason)
				f.closeClient(pe.Code, "scry: "+pe.Reason)
			}
			return sent, err
		}
		out := m.Raw
		if !m.Opcode.IsControl() {
			out = f.command(m)
			if out == nil {
				continue
			}
		}
		n, err := f.backend.Write(out)
		sent += int64(n)
		if err != nil {
			return sent, err
		}
	}
}

// errCommandMemory ends a connection that would wait for command memory
// while holding some.
var errCommandMemory = errors.New("busy: too many large commands at once; send it again")

// reserveCommand takes n bytes of command memory for a connection that
// holds held for the command being read. It waits only while it holds
// none: connections waiting while holding memory could wait on each
// other forever.
func (p *Proxy) reserveCommand(ctx context.Context, n, held int64) error {
	if held+n > p.cfg.CommandMemory {
		return errCommandMemory // it could never fit
	}
	if held == 0 {
		return p.cmdMem.Acquire(ctx, n)
	}
	if p.cmdMem.TryAcquire(n) {
		return nil
	}
	return errCommandMemory
}

// command decides one data message: it returns the frames to forward, or
// nil when scry answered the command itself.
func (f *filterConn) command(m wsframe.Message) []byte {
	cmd, err := cdprole.Peek(m.Payload)
	var v cdprole.Verdict
	switch {
	case err != nil && f.policy.Role == cdprole.Admin:
		// Admin traffic is only audited: Chromium answers what scry
		// cannot read.
		v = cdprole.Verdict{Allow: true}
		cmd.Method = "(unreadable)"
	case err != nil:
		v = cdprole.Verdict{Reason: err.Error()}
	default:
		v = f.policy.Check(cmd, m.Payload)
	}
	f.audit.command(cmd, v)
	if !v.Allow {
		f.p.obs.RefusedCommand(f.c.who.Role.String(), cdprole.MethodLabel(cmd.Method))
		f.reply(cdprole.ErrorReply(cmd, v.Reason))
		return nil
	}
	if v.Rewritten != nil {
		var key [4]byte
		_, _ = rand.Read(key[:])
		return wsframe.AppendFrame(nil, m.Opcode, true, &key, v.Rewritten)
	}
	return m.Raw
}

// reply sends scry's own answer to the client, between two frames.
func (f *filterConn) reply(payload []byte) {
	frame := wsframe.AppendFrame(nil, wsframe.OpText, true, nil, payload)
	f.wmu.Lock()
	defer f.wmu.Unlock()
	_, _ = f.client.Write(frame)
}

// closeClient sends the client a Close frame.
func (f *filterConn) closeClient(code uint16, reason string) {
	frame := wsframe.AppendFrame(nil, wsframe.OpClose, true, nil, wsframe.ClosePayload(code, reason))
	f.wmu.Lock()
	defer f.wmu.Unlock()
	_, _ = f.client.Write(frame)
}

// downstream copies Chromium's frames to the client, whole, redacting the
// events that can carry cookie values for scoped roles. scry's replies go
// in only between messages: the write lock is held from the first
// fragment of a message to its last. It returns the bytes sent to the
// client (scry's replies are not counted).
func (f *filterConn) downstream(br *bufio.Reader) (sent int64, err error) {
	redact := f.policy.Role != cdprole.Admin
	buf := make([]byte, 0, 4096)
	inMessage := false
	defer func() {
		if inMessage {
			f.wmu.Unlock()
		}
	}()
	for {
		h, err := wsframe.ReadHeader(br)
		if err != nil {
			return sent, err
		}
		if h.Masked {
			return sent, errors.New("chromium sent a masked frame")
		}
		if inMessage && (h.Opcode == wsframe.OpText || h.Opcode == wsframe.OpBinary) {
			return sent, errors.New("chromium began a message inside another")
		}
		if redact && h.Opcode == wsframe.OpText {
			peek, _ := br.Peek(int(min(h.Length, peekLen)))
			var n int64
			var err error
			switch {
			case cdprole.MayCarryCookies(peek):
				n, err = f.whole(br, h, cdprole.Redact)
			case isSessionEvent(peek):
				n, err = f.whole(br, h, f.sessions.note)
			default:
				goto copyThrough
			}
			sent += n
			if err != nil {
				return sent, err
			}
			continue
		}
	copyThrough:
		if !inMessage {
			f.wmu.Lock()
		}
		var n int64
		n, err = f.copyFrame(br, h, buf)
		sent += n
		switch {
		case h.Opcode.IsControl():
			// A control frame keeps the message it interrupts open.
		case h.Fin:
			inMessage = false
		default:
			inMessage = true
		}
		if !inMessage {
			f.wmu.Unlock()
		}
		if err != nil {
			return sent, err
		}
	}
}

// copyFrame writes one frame to the client, its header h already read
// from br: a small one read whole and written in one call, a large one
// copied through. The caller holds the write lock.
func (f *filterConn) copyFrame(br *bufio.Reader, h wsframe.Header, buf []byte) (int64, error) {
	buf = wsframe.AppendHeader(buf[:0], h)
	if h.Length <= wholeFrame {
		hl := len(buf)
		buf = slices.Grow(buf, int(h.Length))[:hl+int(h.Length)]
		if _, err := io.ReadFull(br, buf[hl:]); err != nil {
			return 0, unexpected(err)
		}
		n, err := f.client.Write(buf)
		return int64(n), err
	}
	n, err := f.client.Write(buf)
	if err != nil {
		return int64(n), err
	}
	m, err := io.CopyN(f.client, br, h.Length)
	return int64(n) + m, unexpected(err)
}

// whole reads a message Chromium sent in frame h whole, passes it
// through change and sends the result: the events scry redacts (cookie
// values) or reads (sessions). Such an event must come in one frame;
// anything else ends the connection rather than pass a cookie through or
// lose track of a session.
func (f *filterConn) whole(br *bufio.Reader, h wsframe.Header, change func([]byte) ([]byte, error)) (int64, error) {
	if !h.Fin || h.Length > maxRedacted {
		return 0, fmt.Errorf("chromium sent a %d-byte event scry must read in a frame it cannot hold whole (fin %v); closing", h.Length, h.Fin)
	}
	payload := make([]byte, h.Length)
	if _, err := io.ReadFull(br, payload); err != nil {
		return 0, unexpected(err)
	}
	out, err := change(payload)
	if err != nil {
		return 0, fmt.Errorf("an event from chromium: %w", err)
	}
	frame := wsframe.AppendFrame(nil, wsframe.OpText, true, nil, out)
	f.wmu.Lock()
	defer f.wmu.Unlock()
	n, err := f.client.Write(frame)
	return int64(n), err
}

// tabHistory is the history of the tab a session of this connection is on
// (cdprole.Policy.TabHistory).
func (f *filterConn) tabHistory(sessionID, targetID string) ([]string, error) {
	if sessionID == "" {
		return f.p.cfg.TargetHistory(targetID)
	}
	targetID, _, ok := f.sessions.page(sessionID)
	if !ok {
		return nil, fmt.Errorf("session %q is not one of this connection's", cut(sessionID, maxIDLen))
	}
	if typ, _ := f.sessions.kind(sessionID); typ != "page" {
		// Frames and workers have no history of their own; a frame's
		// tab is checked on the tab's session.
		return nil, nil
	}
	return f.p.cfg.TargetHistory(targetID)
}

// shownBrowserPage is a browser page the tab a command is for has shown
// (cdprole.Policy.ShownBrowserPage). A frame's or worker's session has no
// history of its own; its tab is checked on the tab's session.
func (f *filterConn) shownBrowserPage(sessionID, targetID string) (string, error) {
	if sessionID != "" {
		id, _, ok := f.sessions.page(sessionID)
		if !ok {
			return "", fmt.Errorf("session %q is not one of this connection's", cut(sessionID, maxIDLen))
		}
		if typ, _ := f.sessions.kind(sessionID); typ != "page" {
			return "", nil
		}
		targetID = id
	}
	return f.p.cfg.TargetShown(targetID)
}

// pageURL is the URL of the page a command is for (cdprole.Policy.PageURL):
// the target its session is attached to, at the URL the browser last
// reported for it, or, without that, the one this connection was told.
func (f *filterConn) pageURL(sessionID, targetID string) (string, bool) {
	attachURL := ""
	if sessionID != "" {
		var ok bool
		if targetID, attachURL, ok = f.sessions.page(sessionID); !ok {
			// Not one of this connection's sessions: Chromium refuses it.
			return "", false
		}
	}
	if f.p.cfg.TargetURL != nil {
		if u, ok := f.p.cfg.TargetURL(targetID); ok {
			return u, true
		}
	}
	return attachURL, sessionID != ""
}

// unexpected turns an EOF inside a frame into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
