// Package tokens holds the agent door's tokens and their roles.
//
// CDP_TOKENS_FILE (a mounted Secret, say) names one token per line:
//
//	# NAME   ROLE      TOKEN
//	ci       agent     3f0c...
//	grafana  observer  9a41...
//
// Blank lines, lines starting with # and a # comment after the token are
// skipped. A token is at least 16 letters, digits or - . _ ~, so that it
// passes unchanged in a ?token= query. A bad line stops
// start-up with its line number and what is wrong, never with the token or
// any other field of it (a token pasted into the wrong column would
// otherwise reach the log). CDP_TOKEN, the single token of earlier
// releases, is one more admin token named "cdp-token".
//
// A request's token is compared with every token in constant time, so
// neither which token matched nor how much of one did shows in the timing.
package tokens

import (
	"bufio"
	"cmp"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dataplanelabs/scry/internal/cdprole"
)

// RoleHeader is the header the agent door sets, in place of any a client
// sent, on the requests it passes to scry's own endpoints (the handoff
// API, /mcp): the role of the token the request carried ("admin" when the
// door asks for none).
const RoleHeader = "X-Scry-Role"

// MinLength is the shortest token accepted.
const MinLength = 16

// LegacyName is the name CDP_TOKEN's token is known by in the audit log.
const LegacyName = "cdp-token"

// Token is one named token. Its secret is not exported, so it cannot be
// logged by accident through a struct dump.
type Token struct {
	Name string
	Role cdprole.Role

	secret string
	hash   [sha256.Size]byte
	where  string // "line N" for a token from a file, for errors
}

// Secret returns the token itself, for the places that hand it back to
// the client that presented it.
func (t Token) Secret() string { return t.secret }

// Set is the door's tokens. The zero value, and nil, hold none.
type Set struct {
	list []Token
}

// Len is the number of tokens.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.list)
}

// Scoped reports whether any token has a role other than admin: then the
// door reads the commands of those tokens' connections.
func (s *Set) Scoped() bool {
	if s == nil {
		return false
	}
	for _, t := range s.list {
		if t.Role != cdprole.Admin {
			return true
		}
	}
	return false
}

// Names lists the tokens' names and roles, for the start-up log.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	out := make([]string, 0, len(s.list))
	for _, t := range s.list {
		out = append(out, t.Name+"="+t.Role.String())
	}
	return out
}

// Add adds a token. The error names the token by name only.
func (s *Set) Add(name string, role cdprole.Role, secret string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := checkSecret(secret); err != nil {
		return fmt.Errorf("token %q: %w", name, err)
	}
	if other := s.clash(name, secret); other != "" {
		return fmt.Errorf("token %q: %s", name, other)
	}
	s.add(name, role, secret, "")
	return nil
}

// AddLegacy adds CDP_TOKEN's token as an admin token named LegacyName,
// unless the set has it already. Its length is config's to check.
func (s *Set) AddLegacy(secret string) {
	if _, ok := s.Match(secret); ok || secret == "" {
		return
	}
	s.add(LegacyName, cdprole.Admin, secret, "CDP_TOKEN")
}

func (s *Set) add(name string, role cdprole.Role, secret, where string) {
	s.list = append(s.list, Token{Name: name, Role: role, secret: secret, hash: sha256.Sum256([]byte(secret)), where: where})
}

// clash says what an existing token shares with a new one, "" if nothing.
func (s *Set) clash(name, secret string) string {
	h := sha256.Sum256([]byte(secret))
	for _, t := range s.list {
		at := cmp.Or(t.where, fmt.Sprintf("%q", t.Name))
		if t.Name == name {
			return "the name is used by " + at + " too; give each token its own name"
		}
		if t.hash == h {
			return "the same token is used by " + at + " too; give each its own random token"
		}
	}
	return ""
}

// Match returns the token got is, comparing it with every token in
// constant time.
func (s *Set) Match(got string) (Token, bool) {
	if s == nil || got == "" {
		return Token{}, false
	}
	h := sha256.Sum256([]byte(got))
	found := -1
	for i := range s.list {
		if subtle.ConstantTimeCompare(h[:], s.list[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Token{}, false
	}
	return s.list[found], true
}

// Redact replaces every token in text with REDACTED, for a logged path.
func (s *Set) Redact(text string) string {
	if s == nil {
		return text
	}
	for _, t := range s.list {
		if strings.Contains(text, t.secret) {
			text = strings.ReplaceAll(text, t.secret, "REDACTED")
		}
	}
	return text
}

// maxFileSize bounds a tokens file: a few thousand lines is plenty.
const maxFileSize = 1 << 20

// Load reads a tokens file (see the package doc). Errors name the file and
// the line, never a token.
func Load(path string) (*Set, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return parseFile(data)
}

// Parse reads the lines of a tokens file.
func Parse(r io.Reader) (*Set, error) {
	s := &Set{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxFileSize)
	var errs []error
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := s.addLine(line, n); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", n+1, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

func (s *Set) addLine(line string, n int) error {
	f := strings.Fields(line)
	if len(f) > 3 && strings.HasPrefix(f[3], "#") {
		f = f[:3] // a comment after the token
	}
	if len(f) != 3 {
		return fmt.Errorf("%d fields, want 3: NAME ROLE TOKEN", len(f))
	}
	// Nothing of a line is repeated back: a token in the wrong column
	// must not reach the log.
	if checkName(f[0]) != nil {
		return errors.New("the name (first field) may hold only letters, digits, '.', '_' and '-', at most 64: NAME ROLE TOKEN")
	}
	role, err := cdprole.ParseRole(f[1])
	if err != nil {
		return errors.New("the role (second field) is not admin, agent or observer: NAME ROLE TOKEN")
	}
	if err := checkSecret(f[2]); err != nil {
		return fmt.Errorf("the token (third field) is %w", err)
	}
	if other := s.clash(f[0], f[2]); other != "" {
		return errors.New(other)
	}
	s.add(f[0], role, f[2], fmt.Sprintf("line %d", n))
	return nil
}

func checkName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("token name %q: want 1 to 64 characters", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("token name %q: use only letters, digits, '.', '_' and '-'", name)
		}
	}
	return nil
}

func checkSecret(secret string) error {
	if len(secret) < MinLength {
		return fmt.Errorf("too short (under %d characters): use a random token, e.g. openssl rand -hex 32", MinLength)
	}
	for i := 0; i < len(secret); i++ {
		c := secret[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			// Clients put it in ?token= as it is: '+', '&', '%' ... would
			// be read as something else there.
			return errors.New("not only letters, digits and - . _ ~ (it must pass unchanged in a URL): use a random token, e.g. openssl rand -hex 32")
		}
	}
	return nil
}
