package hostpolicy

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckHost(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		host    string
		ok      bool
	}{
		{"empty host (HTTP/1.0)", nil, "", true},
		{"ipv4", nil, "127.0.0.1", true},
		{"ipv4 with port", nil, "127.0.0.1:9222", true},
		{"other ipv4 with port", nil, "10.1.2.3:80", true},
		{"ipv6 bare", nil, "::1", true},
		{"ipv6 bracketed", nil, "[::1]", true},
		{"ipv6 loopback with port", nil, "[::1]:9222", true},
		{"ipv6 with port", nil, "[2001:db8::1]:9222", true},
		{"localhost", nil, "localhost", true},
		{"localhost with port", nil, "localhost:9222", true},
		{"localhost upper with root dot", nil, "LOCALHOST.", true},
		{"localhost upper with root dot and port", nil, "LOCALHOST.:9222", true},

		{"allowed name", []string{"scry-0.scry"}, "scry-0.scry", true},
		{"allowed name any port", []string{"scry-0.scry"}, "scry-0.scry:9222", true},
		{"allowed name other port", []string{"scry-0.scry"}, "scry-0.scry:1234", true},
		{"allowed name case-insensitive", []string{"Scry-0.Scry"}, "SCRY-0.SCRY:9222", true},
		{"allowed name with root dot in header", []string{"scry-0.scry"}, "scry-0.scry.:9222", true},
		{"allowed name with root dot in config", []string{"scry-0.scry."}, "scry-0.scry:9222", true},
		{"second entry", []string{"a.example", "scry"}, "scry:9222", true},
		{"name:port entry, that port", []string{"scry:9222"}, "scry:9222", true},
		{"name:port entry, upper case", []string{"scry:9222"}, "SCRY:9222", true},
		{"name:port entry, other port", []string{"scry:9222"}, "scry:9223", false},
		{"name:port entry, no port", []string{"scry:9222"}, "scry", false},
		{"name:port entry, root dot in header", []string{"scry:9222"}, "scry.:9222", true},
		{"name:port entry, root dot and upper case in header", []string{"scry:9222"}, "SCRY.:9222", true},
		{"name:port entry with root dot", []string{"scry.:9222"}, "scry:9222", true},
		{"name:port entry, root dot in header, other port", []string{"scry:9222"}, "scry.:9223", false},
		{"wildcard entry is not a pattern", []string{"*.scry"}, "scry-0.scry:9222", false},
		{"empty entry allows no empty name", []string{""}, ".", false},
		{"root-dot entry allows no empty name", []string{"."}, ".:9222", false},
		{"port only", nil, ":9222", false},

		{"rebinding name", nil, "evil.example", false},
		{"rebinding name with port", nil, "evil.example:9222", false},
		{"name that embeds an ip", nil, "127.0.0.1.nip.io:9222", false},
		{"name that starts with localhost", nil, "localhost.evil.example:9222", false},
		{"suffix of an allowed name", []string{"scry-0.scry"}, "scry-0.scry.evil.example:9222", false},
		{"subdomain of an allowed name", []string{"scry-0.scry"}, "x.scry-0.scry:9222", false},
		{"prefix of an allowed name", []string{"scry-0.scry"}, "scry-0:9222", false},
		{"unlisted name with list", []string{"scry-0.scry"}, "scry-1.scry:9222", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Policy{AllowedHosts: tt.allowed, HostsVariable: "CDP_ALLOWED_HOSTS"}
			err := p.CheckHost(tt.host)
			if tt.ok {
				if err != nil {
					t.Fatalf("CheckHost(%q) with %q = %v, want accepted", tt.host, tt.allowed, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckHost(%q) with %q accepted, want refused", tt.host, tt.allowed)
			}
			checkRefusal(t, err, ErrHost, "CDP_ALLOWED_HOSTS", tt.host)
		})
	}
}

func TestCheckOrigin(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		origin  string
		ok      bool
	}{
		{"no origin (CDP library)", nil, "", true},
		{"no origin, list set", []string{"https://app.example"}, "", true},
		{"wildcard", []string{"*"}, "https://evil.example", true},
		{"wildcard after others", []string{"https://app.example", "*"}, "http://x", true},
		{"exact", []string{"https://app.example"}, "https://app.example", true},
		{"case-insensitive", []string{"https://app.example"}, "HTTPS://APP.EXAMPLE", true},
		{"trailing slash in config", []string{"https://app.example/"}, "https://app.example", true},
		{"with port", []string{"http://localhost:3000"}, "http://localhost:3000", true},

		{"any origin refused by default", nil, "https://evil.example", false},
		{"null origin", nil, "null", false},
		{"other scheme", []string{"https://app.example"}, "http://app.example", false},
		{"other port", []string{"http://localhost:3000"}, "http://localhost:3001", false},
		{"suffix attack", []string{"https://app.example"}, "https://app.example.evil", false},
		{"subdomain", []string{"https://app.example"}, "https://x.app.example", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Policy{AllowedOrigins: tt.allowed, OriginsVariable: "CDP_ALLOWED_ORIGINS"}
			err := p.CheckOrigin(tt.origin)
			if tt.ok {
				if err != nil {
					t.Fatalf("CheckOrigin(%q) with %q = %v, want accepted", tt.origin, tt.allowed, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckOrigin(%q) with %q accepted, want refused", tt.origin, tt.allowed)
			}
			checkRefusal(t, err, ErrOrigin, "CDP_ALLOWED_ORIGINS", tt.origin)
		})
	}
}

// checkRefusal asserts that a refusal is classified and tells the user which
// variable to change and which value was refused.
func checkRefusal(t *testing.T, err, kind error, variable, value string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Errorf("error %q does not wrap %v", err, kind)
	}
	if !strings.Contains(err.Error(), variable) {
		t.Errorf("error %q does not name %s", err, variable)
	}
	if !strings.Contains(err.Error(), value) {
		t.Errorf("error %q does not quote the refused value %q", err, value)
	}
}
