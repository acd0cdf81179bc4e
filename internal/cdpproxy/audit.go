package cdpproxy

import (
	"log/slog"
	"strings"
	"time"

	"github.com/dataplanelabs/scry/internal/cdprole"
	"github.com/dataplanelabs/scry/internal/ratelog"
)

// The audit trail (AUDIT_LOG) of connections read command by command:
//
//   - "commands": a line per command: the token's name and role, the
//     connection, the method, the session or target, the URL of
//     navigations and new tabs;
//   - "summary": a line per connection at its close, its commands counted
//     by method and its refusals;
//   - refused commands are logged whatever the mode.
//
// A line never holds a parameter value other than those named:
// Input.insertText and Input.dispatchKeyEvent carry what is typed,
// passwords included. Methods are counted under cdprole.MethodLabel, so a
// client inventing method names cannot grow a connection's counts.

// refusedBurst refused commands of one token are logged at once; past
// them, one a second, the next logged line saying how many were not. The
// connection's summary counts every one.
const refusedBurst = 20

type auditTrail struct {
	p       *Proxy
	c       conn
	log     *slog.Logger
	mode    string
	total   int
	methods map[string]int
	refused map[string]int
}

func newAuditTrail(p *Proxy, c conn) *auditTrail {
	return &auditTrail{
		p: p, c: c, mode: p.cfg.AuditMode,
		log:     p.cfg.Audit.With("token", c.who.Name, "role", c.who.Role.String(), "conn", c.id),
		methods: map[string]int{},
		refused: map[string]int{},
	}
}

// command records one command and what became of it.
func (a *auditTrail) command(cmd cdprole.Command, v cdprole.Verdict) {
	label := cdprole.MethodLabel(cmd.Method)
	a.total++
	a.methods[label]++
	if !v.Allow {
		a.refused[label]++
		if ok, held := a.p.refusedLog.Allow(a.c.who.Name); ok {
			attrs := append(commandAttrs(cmd), "reason", cut(v.Reason, maxReasonLen))
			if held > 0 {
				attrs = append(attrs, "not_logged_before", held)
			}
			a.log.Warn("cdp command refused", attrs...)
		}
		return
	}
	if a.mode == "commands" {
		a.log.Info("cdp command", commandAttrs(cmd)...)
	}
}

// commandAttrs are what a line says of a command: never its parameters
// beyond the target and the URL. The method is the client's, cut short:
// an unknown one is what an auditor most wants to see.
func commandAttrs(cmd cdprole.Command) []any {
	attrs := []any{"method", shortMethod(cmd.Method)}
	if cmd.SessionID != "" {
		attrs = append(attrs, "session", cut(cmd.SessionID, maxIDLen))
	}
	if cmd.TargetID != "" {
		attrs = append(attrs, "target", cut(cmd.TargetID, maxIDLen))
	}
	if cmd.ToSession != "" {
		attrs = append(attrs, "to_session", cut(cmd.ToSession, maxIDLen))
	}
	if cmd.URL != "" {
		attrs = append(attrs, "url", cut(cmd.URL, maxURLLen))
	}
	if in := cmd.Inner; in != nil {
		attrs = append(attrs, "inner_method", shortMethod(in.Method))
		if in.URL != "" {
			attrs = append(attrs, "inner_url", cut(in.URL, maxURLLen))
		}
	}
	return attrs
}

// A line's values are cut, so a client cannot make one huge (a data: URL
// can be megabytes): ids at maxIDLen bytes, URLs at maxURLLen, reasons
// (which name the client's method) at maxReasonLen.
const (
	maxIDLen     = 128
	maxURLLen    = 2048
	maxReasonLen = 512
)

// cut shortens s to n bytes at most, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// close writes the connection's summary line.
func (a *auditTrail) close(d time.Duration) {
	if a.mode == "off" || a.mode == "" {
		return
	}
	a.log.Info("cdp connection summary", "duration", d.Round(time.Millisecond),
		"commands", a.total, "methods", a.methods, "refused", a.refused)
}

// shortMethod is a client's method name for a log line: at most 80
// bytes, and "(none)" when the command had none.
func shortMethod(m string) string {
	if m == "" {
		return "(none)"
	}
	return cut(m, 80)
}

func newRefusedLog() *ratelog.Limiter { return ratelog.New(refusedBurst, time.Second) }
