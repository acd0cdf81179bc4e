package hostpolicy

import (
	"errors"
	"net"
	"regexp"
	"strings"
	"testing"
)

// FuzzCheckHost checks that the Host policy never panics, that every
// refusal is classified and tells the user what to set, that it ignores
// ASCII case, that configuring names only ever adds to what is accepted,
// and that with no names configured only IP literals and localhost pass.
func FuzzCheckHost(f *testing.F) {
	for _, s := range [][2]string{
		{"", ""},
		{"127.0.0.1:9222", ""},
		{"[::1]:9222", ""},
		{"LOCALHOST.", ""},
		{"scry-0.scry:9222", "scry-0.scry"},
		{"scry:9223", "scry:9222"},
		{"evil.example:9222", "scry-0.scry,scry:9222"},
		{"[fe80::1%25eth0]:9222", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, hostport, allowed string) {
		var names []string
		if allowed != "" {
			names = strings.Split(allowed, ",")
		}
		p := &Policy{AllowedHosts: names, HostsVariable: "CDP_ALLOWED_HOSTS"}
		err := p.CheckHost(hostport)
		if err != nil {
			if !errors.Is(err, ErrHost) || !strings.Contains(err.Error(), "CDP_ALLOWED_HOSTS") {
				t.Fatalf("CheckHost(%q) = %q: not classified or does not name CDP_ALLOWED_HOSTS", hostport, err)
			}
		}
		if isASCII(hostport) && isASCII(allowed) {
			up := (&Policy{AllowedHosts: strings.Split(strings.ToUpper(allowed), ",")}).CheckHost(strings.ToUpper(hostport))
			if (err == nil) != (up == nil) {
				t.Fatalf("CheckHost(%q) = %v but upper case = %v", hostport, err, up)
			}
		}
		base := (&Policy{}).CheckHost(hostport)
		if base == nil && err != nil {
			t.Fatalf("CheckHost(%q) accepted with no names but refused with %q", hostport, names)
		}
		if base == nil && hostport != "" && !loopbackOrIP(hostport) {
			t.Fatalf("CheckHost(%q) accepted a name with no names configured", hostport)
		}
		// A plain DNS name is accepted when listed, on any port, and a
		// name:port entry accepts that port only.
		if dnsName.MatchString(hostport) {
			for _, tc := range []struct {
				entry, host string
				ok          bool
			}{
				{hostport, hostport, true},
				{hostport, hostport + ":9222", true},
				{hostport + ":9222", hostport + ":9222", true},
				{hostport + ":9222", hostport + ":9223", loopbackOrIP(hostport)},
			} {
				err := (&Policy{AllowedHosts: []string{tc.entry}}).CheckHost(tc.host)
				if (err == nil) != tc.ok {
					t.Fatalf("CheckHost(%q) with [%q] = %v, want accepted=%v", tc.host, tc.entry, err, tc.ok)
				}
			}
		}
	})
}

var dnsName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)

// loopbackOrIP is the fuzz oracle for "what Chrome itself accepts": an IP
// literal or localhost, with or without a port and a root dot.
func loopbackOrIP(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return host == "localhost" || net.ParseIP(host) != nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// FuzzCheckOrigin: no Origin is always fine, "*" allows everything, and
// without a list every non-empty Origin is refused.
func FuzzCheckOrigin(f *testing.F) {
	f.Add("https://app.example", "https://app.example/")
	f.Add("null", "")
	f.Add("HTTPS://APP.EXAMPLE", "https://app.example")
	f.Fuzz(func(t *testing.T, origin, allowed string) {
		if err := (&Policy{}).CheckOrigin(""); err != nil {
			t.Fatal("no Origin refused")
		}
		if err := (&Policy{AllowedOrigins: []string{"*"}}).CheckOrigin(origin); err != nil {
			t.Fatalf("* refused %q", origin)
		}
		if origin != "" {
			if err := (&Policy{}).CheckOrigin(origin); err == nil {
				t.Fatalf("%q allowed by an empty list", origin)
			}
		}
		p := &Policy{AllowedOrigins: []string{allowed}}
		if err := p.CheckOrigin(origin); err == nil && origin != "" && allowed != "*" &&
			!strings.EqualFold(strings.TrimSuffix(allowed, "/"), origin) {
			t.Fatalf("%q allowed by %q", origin, allowed)
		}
	})
}
