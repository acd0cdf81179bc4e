package cdprole

import "fmt"

// Role is what a CDP token may do.
type Role uint8

const (
	Admin    Role = iota + 1 // everything; never filtered
	Agent                    // drives pages, cannot take the login
	Observer                 // read-only
)

// ParseRole reads a role as written in CDP_TOKENS_FILE.
func ParseRole(s string) (Role, error) {
	switch s {
	case "admin":
		return Admin, nil
	case "agent":
		return Agent, nil
	case "observer":
		return Observer, nil
	}
	return 0, fmt.Errorf("role %q: want admin, agent or observer", s)
}

func (r Role) String() string {
	switch r {
	case Admin:
		return "admin"
	case Agent:
		return "agent"
	case Observer:
		return "observer"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}
