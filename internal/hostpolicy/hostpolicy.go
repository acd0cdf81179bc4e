// Package hostpolicy keeps Chrome's own protections on scry's doors, which
// must answer to other hosts' names: the Host check that stops DNS
// rebinding, and the Origin check that stops web pages from opening
// WebSockets. The agent door uses both; the human door the Host check.
package hostpolicy

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Policy is one door's allow-lists. Its refusals name the settings that
// change them, which the caller passes in.
type Policy struct {
	// AllowedHosts are names accepted in the Host header besides IP
	// literals and localhost: "scry-0.scry" (any port) or "scry:9222".
	AllowedHosts []string
	// AllowedOrigins are Origin values accepted; "*" accepts any.
	AllowedOrigins []string
	// HostsVariable and OriginsVariable name the settings that list
	// AllowedHosts and AllowedOrigins ("CDP_ALLOWED_HOSTS"), for refusal
	// messages.
	HostsVariable, OriginsVariable string
}

// ErrHost and ErrOrigin classify refusals (for metrics and tests).
var (
	ErrHost   = errors.New("host not allowed")
	ErrOrigin = errors.New("origin not allowed")
)

// CheckHost accepts an empty Host (HTTP/1.0), IP literals, localhost, and
// the configured names. Anything else could be a DNS name an attacker's page
// re-pointed at this machine.
func (p *Policy) CheckHost(hostport string) error {
	if hostport == "" {
		return nil
	}
	v := cmp.Or(p.HostsVariable, "the allowed hosts")
	host, port := splitHost(hostport)
	if _, perr := strconv.ParseUint(port, 10, 16); perr != nil && port != "" {
		return fmt.Errorf("%w: Host header %q has a port that is not a number (names in %s take host or host:port)", ErrHost, hostport, v)
	}
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if net.ParseIP(h) != nil || h == "localhost" {
		return nil
	}
	if host == "" { // ":9222", "."
		return fmt.Errorf("%w: Host header %q names no host; send the address clients use "+
			"(an IP literal, localhost, or a name listed in %s)", ErrHost, hostport, v)
	}
	for _, a := range p.AllowedHosts {
		// "name" allows any port, "name:port" that port only; an empty
		// entry allows nothing.
		if ah, ap := splitHost(a); ah != "" && ah == host && (ap == "" || ap == port) {
			return nil
		}
	}
	example := host
	if p.HostsVariable != "" {
		example = p.HostsVariable + "=" + host
	}
	return fmt.Errorf("%w: Host header %q is not an IP address, localhost, or a name in %s; "+
		"add the name clients use (e.g. %s) — this check stops DNS rebinding", ErrHost, hostport, v, example)
}

// CheckOrigin accepts requests without an Origin (CDP libraries send none)
// and the configured origins. A browser page always sends one.
func (p *Policy) CheckOrigin(origin string) error {
	if origin == "" {
		return nil
	}
	for _, a := range p.AllowedOrigins {
		if a == "*" || strings.EqualFold(strings.TrimSuffix(a, "/"), origin) {
			return nil
		}
	}
	return fmt.Errorf("%w: Origin %q may not use CDP; list it in %s if a web page really must drive this browser",
		ErrOrigin, origin, cmp.Or(p.OriginsVariable, "the allowed origins"))
}

// splitHost splits a Host header or an allowed-hosts entry into a lower-case
// host without the root dot ("scry.:9222" and "SCRY:9222" are both "scry",
// "9222") and a port, empty if there is none.
func splitHost(hostport string) (host, port string) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, "" // no port, or a bare IPv6 literal
	}
	return strings.TrimSuffix(strings.ToLower(host), "."), port
}
