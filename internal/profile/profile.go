// Package profile prepares the Chromium profile directory: the persistent
// identity that lives on the volume.
package profile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// StateDir is scry's own directory inside the profile.
const StateDir = ".scry"

// singletons are the files Chromium uses to find a running instance of a
// profile. An unclean shutdown leaves them behind.
var singletons = []string{"SingletonLock", "SingletonSocket", "SingletonCookie"}

// Lock is scry's exclusive hold on a profile directory for its lifetime.
// The kernel releases it when scry dies, however it dies.
type Lock struct {
	f *os.File
}

// Acquire takes the profile's lock or explains who holds it.
func Acquire(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create PROFILE_DIR %s: %w (mount a writable volume there)", dir, err)
	}
	d, err := OpenDir(dir, -1, -1)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	// The profile belongs to the child uid; never follow a link it may
	// have planted where scry (perhaps root) opens and truncates files.
	if err := d.MkdirAll(StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("profile lock: %w", err)
	}
	f, err := d.OpenFile(StateDir+"/lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open profile lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("profile %s in use by scry pid %s: stop that scry first, or give this one its own PROFILE_DIR", dir, strings.TrimSpace(string(b[:n])))
		}
		return nil, fmt.Errorf("lock profile %s: %w", dir, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &Lock{f: f}, nil
}

// Release gives the lock up.
func (l *Lock) Release() {
	if l != nil && l.f != nil {
		_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
		l.f.Close()
	}
}

// Prepare creates dir if missing, clears the Singleton* files an unclean
// shutdown left behind, refuses if a live Chromium still holds the profile,
// and, when uid >= 0, hands the whole tree to uid:gid so an unprivileged
// Chromium can write it.
func Prepare(log *slog.Logger, dir string, uid, gid int) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create PROFILE_DIR %s: %w (mount a writable volume there)", dir, err)
	}
	d, err := OpenDir(dir, uid, gid)
	if err != nil {
		return err
	}
	defer d.Close()
	if target, err := d.Readlink("SingletonLock"); err == nil {
		if pid, alive := liveChromium(target); alive {
			return fmt.Errorf("profile %s in use by pid %d (a Chromium still running with this profile): stop it, or give scry its own PROFILE_DIR", dir, pid)
		}
		log.Info("removing stale profile lock left by an unclean shutdown", "lock", target)
	}
	for _, name := range singletons {
		err := d.Remove(name)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove stale %s: %w", name, err)
		}
	}
	if uid >= 0 {
		if err := d.ChownTree(uid, gid); err != nil {
			return fmt.Errorf("give PROFILE_DIR to uid %d: %w", uid, err)
		}
		if err := reachable(dir, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// reachable checks that uid:gid can traverse every parent of dir; Chromium
// otherwise starts with no usable profile and says so only in a dialog
// nobody sees.
func reachable(dir string, uid, gid int) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode().Perm()
		var ok bool
		switch {
		case int(st.Uid) == uid:
			ok = mode&0o100 != 0
		case int(st.Gid) == gid:
			ok = mode&0o010 != 0
		default:
			ok = mode&0o001 != 0
		}
		if !ok {
			return fmt.Errorf("PROFILE_DIR %s is not reachable by uid %d: %s is mode %04o owned by uid %d; "+
				"make it traversable (chmod o+x %s) or put PROFILE_DIR elsewhere", dir, uid, p, mode, st.Uid, p)
		}
		if p == "/" || p == "." {
			return nil
		}
	}
}

// liveChromium reports whether a SingletonLock target ("host-pid") names a
// Chromium that is alive on this host. A pid alone is not enough: in a new
// container the same pid belongs to somebody else.
func liveChromium(target string) (int, bool) {
	i := strings.LastIndexByte(target, '-')
	if i < 0 {
		return 0, false
	}
	host, pidStr := target[:i], target[i+1:]
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 {
		return 0, false
	}
	if h, err := os.Hostname(); err != nil || h != host {
		return pid, false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil || dying(stat) {
		return pid, false
	}
	// The command name is set by exec itself; the command line can read
	// empty for a moment after it.
	for _, f := range []string{"comm", "cmdline"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
		if err == nil && bytes.Contains(bytes.ToLower(b), []byte("chrom")) {
			return pid, true
		}
	}
	return pid, false
}

// pfExiting is the kernel's PF_EXITING task flag: the process has begun to
// exit (a SIGKILL is being carried out) and will never run its own code again.
const pfExiting = 0x4

// dying reports whether a /proc/PID/stat line shows a process that is dead
// or on its way out: a zombie its parent has not reaped, or one still tearing
// down after SIGKILL (state R or D, flag PF_EXITING, command line already
// empty). A Chromium killed a moment ago, as in a crashed container restarted
// in place, looks like this for a few milliseconds; its lock is stale.
// A line it cannot parse counts as alive: refusing is the safe mistake.
func dying(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return false
	}
	// After "comm)": state ppid pgrp session tty_nr tpgid flags ...
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 7 {
		return false
	}
	if f[0] == "Z" || f[0] == "X" || f[0] == "x" {
		return true
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	return err == nil && flags&pfExiting != 0
}

// maxPreferences bounds the Preferences file MarkCleanExit reads.
const maxPreferences = 64 << 20

// MarkCleanExit records in the profile's preferences that the last session
// ended cleanly, so a start after a crash or SIGKILL opens the profile
// without the "Chromium didn't shut down correctly / Restore pages?" bubble.
// When it changes the file it logs what the last exit was, the one trace
// left that the previous run ended uncleanly. A missing or unreadable
// Preferences file is left alone.
func MarkCleanExit(log *slog.Logger, dir string) error {
	d, err := OpenDir(dir, -1, -1)
	if err != nil {
		return err
	}
	defer d.Close()
	const name = "Default/Preferences"
	path := d.full(name)
	f, err := d.OpenFile(name, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read preferences: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("read preferences: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPreferences+1))
	if err != nil {
		return fmt.Errorf("read preferences: %w", err)
	}
	if len(b) > maxPreferences {
		return fmt.Errorf("%s is larger than %d bytes; left alone", path, maxPreferences)
	}
	var prefs map[string]json.RawMessage
	if err := json.Unmarshal(b, &prefs); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	var prof map[string]json.RawMessage
	if raw, ok := prefs["profile"]; ok {
		if err := json.Unmarshal(raw, &prof); err != nil {
			return fmt.Errorf("parse %s profile section: %w", path, err)
		}
	}
	if prof == nil {
		prof = map[string]json.RawMessage{}
	}
	if string(prof["exit_type"]) == `"Normal"` && string(prof["exited_cleanly"]) == "true" {
		return nil
	}
	wasType, wasClean := "unset", "unset"
	if raw, ok := prof["exit_type"]; ok {
		wasType = string(raw)
		_ = json.Unmarshal(raw, &wasType)
	}
	if raw, ok := prof["exited_cleanly"]; ok {
		wasClean = string(raw)
	}
	prof["exit_type"] = json.RawMessage(`"Normal"`)
	prof["exited_cleanly"] = json.RawMessage(`true`)
	raw, err := json.Marshal(prof)
	if err != nil {
		return err
	}
	prefs["profile"] = raw
	out, err := json.Marshal(prefs)
	if err != nil {
		return err
	}
	st := fi.Sys().(*syscall.Stat_t)
	if err := d.WriteFileAtomic(name, out, fi.Mode().Perm(), int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	log.Info("marked the profile's last exit clean", "was_exit_type", wasType, "was_exited_cleanly", wasClean)
	return nil
}

// WriteFileAtomic replaces path with data so that a crash at any moment
// leaves either the old or the new file, never a torn one: write a temp
// file, fsync it, rename it over, fsync the directory. A uid >= 0 becomes
// the new file's owner.
func WriteFileAtomic(path string, data []byte, perm os.FileMode, uid, gid int) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if uid >= 0 {
		_ = f.Chown(uid, gid)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
