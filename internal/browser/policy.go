package browser

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"

	"github.com/dataplanelabs/scry/internal/profile"
)

// FileURLs is the blocklist entry for every file: URL. Blocked, an agent
// cannot open PROFILE_DIR/.scry/cookies.json, the Cookies database or, on a
// shared host, another instance's profile in a tab and read it.
const FileURLs = "file://*"

// InternalPages are the browser's own pages no agent needs, each of which
// gives a page script more than CDP already does:
//
//   - chrome://net-internals, chrome://net-export: network logs, with
//     cookies and credentials when asked;
//   - chrome://inspect: makes Chromium discover and connect to arbitrary
//     host:port targets, and set up port forwarding;
//   - chrome://policy: its test page (chrome://policy/test) applies local
//     test policies, which could lift this very blocklist;
//   - chrome://flags: persistent switches, some of which weaken security;
//   - chrome://password-manager: saved passwords in clear text
//     (chrome://settings/passwords leads there);
//   - devtools://: the DevTools front end, whose host bindings load
//     file: URLs for source maps, around the file: block.
//
// chrome://settings stays open: the human at the noVNC page may need it
// (site data, permissions, languages). DevTools (F12) in that view is
// blocked too; inspect remotely through the CDP port instead.
var InternalPages = []string{
	"chrome://net-internals",
	"chrome://net-export",
	"chrome://inspect",
	"chrome://policy",
	"chrome://flags",
	"chrome://password-manager",
	"devtools://*",
}

// URLBlocklist returns the navigation blocklist scry sets: InternalPages,
// and file: URLs unless allowFileURLs (ALLOW_FILE_URLS=on).
func URLBlocklist(allowFileURLs bool) []string {
	list := []string{}
	if !allowFileURLs {
		list = append(list, FileURLs)
	}
	return append(list, InternalPages...)
}

// prefsFile is the Default profile's preferences, relative to PROFILE_DIR.
const prefsFile = "Default/Preferences"

// maxPrefs bounds the preferences file scry reads.
const maxPrefs = 64 << 20

// SetURLBlocklist writes the navigation blocklist into the profile's
// preferences before Chromium starts: the preferences "policy.url_blocklist"
// and "policy.url_allowlist" (emptied) that Chromium's URLBlocklist and
// URLAllowlist policies also set. Chromium enforces them for every
// navigation whatever starts it (Page.navigate, Target.createTarget,
// /json/new, a link, the address bar) and in every browser context.
//
// A preference rather than a policy file because Chromium reads policies
// only from /etc/chromium/policies, which scry cannot write when it runs
// unprivileged (the image, a plain make run); a managed policy an
// administrator installs there still wins. scry owns both keys: it rewrites
// them at every start, so ALLOW_FILE_URLS takes effect at the next start.
//
// The file goes through profile.Dir (no link followed, nothing outside
// PROFILE_DIR, as root only the child uid's files); uid >= 0 (scry runs as
// root) is the child uid, which gets what scry creates.
//
// It returns what the profile opens at launch, read from the same file.
func SetURLBlocklist(profileDir string, blocklist []string, uid, gid int) (Startup, error) {
	st, err := setURLBlocklist(profileDir, blocklist, uid, gid)
	if err != nil {
		return StartupNewTab, fmt.Errorf("set url blocklist: %w", err)
	}
	return st, nil
}

// Startup is what a profile opens at launch: its "On startup" setting.
type Startup int

const (
	// StartupNewTab: a new tab, Chromium's default.
	StartupNewTab Startup = iota
	// StartupRestore: the pages open at the last exit ("Continue where
	// you left off").
	StartupRestore
	// StartupURLs: the pages the person listed ("Open a specific page or
	// set of pages").
	StartupURLs
)

// startupOf reads the setting from the preferences (session.restore_on_startup:
// 1 restores, 6 restores and opens the listed URLs, 4 opens the listed
// URLs, 5 or nothing opens a new tab). A managed RestoreOnStartup policy
// is not seen here.
func startupOf(prefs map[string]json.RawMessage) Startup {
	var session struct {
		RestoreOnStartup int `json:"restore_on_startup"`
	}
	if raw, ok := prefs["session"]; !ok || json.Unmarshal(raw, &session) != nil {
		return StartupNewTab
	}
	switch session.RestoreOnStartup {
	case 1, 6:
		return StartupRestore
	case 4:
		return StartupURLs
	}
	return StartupNewTab
}

func setURLBlocklist(profileDir string, blocklist []string, uid, gid int) (Startup, error) {
	d, err := profile.OpenDir(profileDir, uid, gid)
	if err != nil {
		return StartupNewTab, err
	}
	defer d.Close()

	prefs := map[string]json.RawMessage{}
	perm := fs.FileMode(0o600)
	fileUID, fileGID := -1, -1 // a new file goes to the Dir's uid
	f, err := d.OpenFile(prefsFile, os.O_RDONLY, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// A fresh profile: Chromium fills in the rest.
		if err := d.MkdirAll(path.Dir(prefsFile), 0o700); err != nil {
			return StartupNewTab, err
		}
	case err != nil:
		return StartupNewTab, err
	default:
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return StartupNewTab, err
		}
		b, err := readPrefs(f)
		if err != nil {
			return StartupNewTab, fmt.Errorf("%s: %w", path.Join(profileDir, prefsFile), err)
		}
		perm = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			fileUID, fileGID = int(st.Uid), int(st.Gid)
		}
		if err := json.Unmarshal(b, &prefs); err != nil {
			return StartupNewTab, fmt.Errorf("%s is not valid JSON (%v): move it aside and Chromium starts with default settings",
				path.Join(profileDir, prefsFile), err)
		}
	}
	policy := map[string]json.RawMessage{}
	if raw, ok := prefs["policy"]; ok {
		if err := json.Unmarshal(raw, &policy); err != nil {
			// Not an object: Chromium would drop it too.
			policy = map[string]json.RawMessage{}
		}
	}
	if policy["url_blocklist"], err = json.Marshal(blocklist); err != nil {
		return StartupNewTab, err
	}
	policy["url_allowlist"] = json.RawMessage(`[]`)
	if prefs["policy"], err = json.Marshal(policy); err != nil {
		return StartupNewTab, err
	}
	out, err := json.Marshal(prefs)
	if err != nil {
		return StartupNewTab, err
	}
	if err := d.WriteFileAtomic(prefsFile, out, perm, fileUID, fileGID); err != nil {
		return StartupNewTab, err
	}
	return startupOf(prefs), nil
}

// readPrefs reads an open preferences file, at most maxPrefs bytes, and
// closes it.
func readPrefs(f *os.File) ([]byte, error) {
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPrefs+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxPrefs {
		return nil, fmt.Errorf("larger than %d bytes", maxPrefs)
	}
	return b, nil
}
