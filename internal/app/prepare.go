package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dataplanelabs/scry/internal/browser"
	"github.com/dataplanelabs/scry/internal/config"
	"github.com/dataplanelabs/scry/internal/display"
	"github.com/dataplanelabs/scry/internal/doctor"
	"github.com/dataplanelabs/scry/internal/profile"
	"github.com/dataplanelabs/scry/internal/rfbauth"
)

// binaries are the programs scry runs.
type binaries struct{ chromium, xvfb, x11vnc string }

// prepare does everything that can fail before a process starts: the
// preflight, who the children run as, the binaries, the doors' handlers,
// the runtime directory and the profile; then it builds the components.
func (s *scry) prepare(ctx context.Context) error {
	cfg := s.cfg
	// The preflight's fatal checks (binaries, the sandbox's user
	// namespaces, the profile directory, ports free, the display free)
	// refuse in the words of `scry doctor`, before anything starts.
	if err := doctor.Fatal(ctx, doctor.Env{Config: cfg, Getenv: s.getenv}); err != nil {
		return fmt.Errorf("preflight (run `scry doctor` for the full report): %w", err)
	}
	var err error
	if s.cred, err = childCredential(cfg); err != nil {
		return err
	}
	bin, err := lookBinaries(cfg)
	if err != nil {
		return err
	}
	// The human door's files are checked before anything starts.
	vncServerPassword, err := rfbauth.NewPassword()
	if err != nil {
		return err
	}
	if err := s.newDoorHandlers(vncServerPassword); err != nil {
		return err
	}
	if err := s.prepareRuntime(); err != nil {
		return err
	}
	if err := s.prepareProfile(); err != nil {
		return err
	}
	return s.newComponents(bin, vncServerPassword)
}

func lookBinaries(cfg *config.Config) (binaries, error) {
	var b binaries
	var err error
	if b.chromium, err = cfg.Lookup(config.Chromium, lookPath); err != nil {
		return b, err
	}
	if b.xvfb, err = cfg.Lookup(config.Xvfb, lookPath); err != nil {
		return b, err
	}
	if b.x11vnc, err = cfg.Lookup(config.X11vnc, lookPath); err != nil {
		return b, err
	}
	return b, nil
}

// prepareRuntime makes a private runtime directory for the children: their
// HOME, and the VNC password file, which must never sit in the profile.
// It also settles the children's environment.
func (s *scry) prepareRuntime() error {
	var err error
	if s.runtime, err = os.MkdirTemp("", "scry-run-"); err != nil {
		return fmt.Errorf("create runtime dir: %w", err)
	}
	home := ""
	if s.cred != nil {
		home = filepath.Join(s.runtime, "home")
		if err := os.Mkdir(home, 0o700); err != nil {
			return fmt.Errorf("create child home: %w", err)
		}
		for _, d := range []string{s.runtime, home} {
			if err := os.Chown(d, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
				return fmt.Errorf("give %s to uid %d: %w", d, s.cred.Uid, err)
			}
		}
		s.log.Info("running as root: children run as an unprivileged uid so Chromium keeps its sandbox", "uid", s.cred.Uid, "gid", s.cred.Gid)
	}
	// The display admits only clients with its cookie: the children get it
	// through XAUTHORITY, and so does scry's own X client (the clipboard),
	// whose library reads it from scry's environment.
	uid, gid := s.childIDs()
	if s.xauth, err = display.NewAuthority(s.runtime, s.cfg.Display, uid, gid); err != nil {
		return err
	}
	if err := os.Setenv("XAUTHORITY", s.xauth.Path); err != nil {
		return fmt.Errorf("set XAUTHORITY: %w", err)
	}
	s.env = s.xauth.Environ(childEnv(os.Environ(), s.cfg.Display, home))
	return nil
}

// prepareProfile takes scry's own lock on the profile first, so two scrys
// never share it, then readies it for the child uid.
func (s *scry) prepareProfile() error {
	var err error
	if s.lock, err = profile.Acquire(s.cfg.ProfileDir); err != nil {
		return err
	}
	uid, gid := s.childIDs()
	if err := profile.Prepare(s.log, s.cfg.ProfileDir, uid, gid); err != nil {
		return err
	}
	if err := profile.MarkCleanExit(s.log.With("component", "profile"), s.cfg.ProfileDir); err != nil {
		s.log.Warn("could not mark the profile's last exit clean; Chromium may offer to restore pages", "err", err)
	}
	// No file: URLs (unless ALLOW_FILE_URLS=on) nor risky internal pages.
	if s.startup, err = browser.SetURLBlocklist(s.cfg.ProfileDir, browser.URLBlocklist(s.cfg.AllowFileURLs), uid, gid); err != nil {
		return err
	}
	s.log.Info("navigation blocklist set", "file_urls", map[bool]string{true: "allowed", false: "blocked"}[s.cfg.AllowFileURLs])
	if s.cfg.TokensFile != "" {
		return s.prepareDownloads()
	}
	return nil
}

// prepareDownloads creates DOWNLOAD_DIR, where scoped tokens' downloads
// land, for the browser's uid: through profile.Dir when it is inside the
// profile (the default), else as a plain directory scry creates.
func (s *scry) prepareDownloads() error {
	uid, gid := s.childIDs()
	dir := s.cfg.DownloadDir
	if rel, err := filepath.Rel(s.cfg.ProfileDir, dir); err == nil && filepath.IsLocal(rel) {
		d, err := profile.OpenDir(s.cfg.ProfileDir, uid, gid)
		if err != nil {
			return err
		}
		defer d.Close()
		if err := d.MkdirAll(filepath.ToSlash(rel), 0o700); err != nil {
			return fmt.Errorf("DOWNLOAD_DIR=%q: %w", dir, err)
		}
		return nil
	}
	if _, err := os.Lstat(dir); err == nil {
		return nil // the operator's own directory: left as it is
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("DOWNLOAD_DIR=%q: %w; create it, writable by uid %d", dir, err, uid)
	}
	if uid >= 0 {
		if err := os.Chown(dir, uid, gid); err != nil {
			return fmt.Errorf("DOWNLOAD_DIR=%q: give it to uid %d: %w", dir, uid, err)
		}
	}
	return nil
}

// childIDs are the children's uid and gid, -1 when they run as scry.
func (s *scry) childIDs() (uid, gid int) {
	if s.cred == nil {
		return -1, -1
	}
	return int(s.cred.Uid), int(s.cred.Gid)
}

func (s *scry) cleanup() {
	if s.runtime != "" {
		_ = os.RemoveAll(s.runtime)
	}
	s.lock.Release()
}
