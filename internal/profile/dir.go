package profile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// Dir is a profile directory opened for scry's own files. The profile
// belongs to the child uid, which can plant links and swap directories in
// it while scry, perhaps root, works there. So every file scry touches in
// the profile goes through a Dir, which:
//
//   - never leaves the directory: names resolve inside an os.Root held
//     open from the start, so no link and no "..", and no rename of the
//     directory itself, can lead outside it;
//   - never follows a link inside it either: every component of a name
//     must be a real directory or file, or the operation is refused with
//     an error that names the link and says how to remove it;
//   - as root, opens only what the child could open itself: files and
//     directories that belong to root, the profile directory's owner or
//     the child uid, regular files with one link (a hard link could name a
//     file elsewhere); scry running as another uid is the child uid and
//     has nothing more to guard;
//   - checks after opening that the file is the one it inspected;
//   - gives what it creates to the child uid.
//
// A link swapped in between the check and the open can at worst lead to
// another file inside the profile that the child owns anyway.
type Dir struct {
	root     *os.Root
	path     string
	uid, gid int   // owner for new files and directories; -1 keeps scry's
	trusted  []int // uids whose files scry opens; nil: any (not root)
}

// OpenDir opens the profile directory at path, which must exist. Files
// and directories scry creates in it go to uid:gid when uid >= 0.
func OpenDir(path string, uid, gid int) (*Dir, error) {
	root, err := os.OpenRoot(path)
	if err != nil {
		return nil, fmt.Errorf("open PROFILE_DIR %s: %w", path, err)
	}
	fi, err := root.Stat(".")
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("open PROFILE_DIR %s: %w", path, err)
	}
	d := &Dir{root: root, path: path, uid: uid, gid: gid}
	if os.Geteuid() == 0 {
		d.trusted = []int{0, owner(fi)}
		if uid >= 0 {
			d.trusted = append(d.trusted, uid)
		}
	}
	return d, nil
}

// Close releases the directory.
func (d *Dir) Close() error { return d.root.Close() }

// Path is the profile directory's path, for messages.
func (d *Dir) Path() string { return d.path }

func owner(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// UnsafeError says why Dir refused a file in the profile, and what to do.
type UnsafeError struct {
	Path   string // full path of the offending file
	Reason string
	Fix    string
}

func (e *UnsafeError) Error() string {
	return fmt.Sprintf("%s %s; scry (uid %d) does not follow links or open files the profile's owner could not: %s",
		e.Path, e.Reason, os.Geteuid(), e.Fix)
}

// full is name's path for messages.
func (d *Dir) full(name string) string { return filepath.Join(d.path, filepath.FromSlash(name)) }

// clean checks that name is a plain relative name inside the profile.
func clean(name string) (string, error) {
	if name == "" || path.IsAbs(name) || path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") {
		return "", fmt.Errorf("bad profile file name %q", name)
	}
	return name, nil
}

// vet checks one inspected entry: a directory (dir) or a regular file,
// not a link, owned by a trusted uid, and a file with a single link.
func (d *Dir) vet(name string, fi fs.FileInfo, dir bool) error {
	p := d.full(name)
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, _ := d.root.Readlink(name)
		return &UnsafeError{Path: p, Reason: fmt.Sprintf("is a symbolic link (to %s)", target),
			Fix: fmt.Sprintf("remove the link (rm %q) and restart; scry recreates what it needs", p)}
	case dir && !fi.IsDir():
		return &UnsafeError{Path: p, Reason: fmt.Sprintf("is not a directory (%s)", fi.Mode().Type()),
			Fix: fmt.Sprintf("remove it (rm %q) and restart", p)}
	case !dir && !fi.Mode().IsRegular():
		return &UnsafeError{Path: p, Reason: fmt.Sprintf("is not a regular file (%s)", fi.Mode().Type()),
			Fix: fmt.Sprintf("remove it (rm -r %q) and restart", p)}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || d.trusted == nil {
		return nil
	}
	trusted := false
	for _, u := range d.trusted {
		trusted = trusted || int(st.Uid) == u
	}
	if !trusted {
		want := fmt.Sprint(d.trusted[len(d.trusted)-1])
		return &UnsafeError{Path: p, Reason: fmt.Sprintf("belongs to uid %d, not to the profile's owner", st.Uid),
			Fix: fmt.Sprintf("give it to the profile's owner (chown %s %q) or remove it", want, p)}
	}
	if !dir && st.Nlink > 1 {
		return &UnsafeError{Path: p, Reason: fmt.Sprintf("has %d hard links (it may be a file outside the profile)", st.Nlink),
			Fix: fmt.Sprintf("remove it (rm %q) and restart", p)}
	}
	return nil
}

// parents checks every directory on the way to name.
func (d *Dir) parents(name string) error {
	parts := strings.Split(name, "/")
	for i := 1; i < len(parts); i++ {
		p := strings.Join(parts[:i], "/")
		fi, err := d.root.Lstat(p)
		if err != nil {
			return err
		}
		if err := d.vet(p, fi, true); err != nil {
			return err
		}
	}
	return nil
}

// Lstat describes name without following a link at its end.
func (d *Dir) Lstat(name string) (fs.FileInfo, error) {
	name, err := clean(name)
	if err != nil {
		return nil, err
	}
	if err := d.parents(name); err != nil {
		return nil, err
	}
	return d.root.Lstat(name)
}

// OpenFile opens the regular file name, creating it if flag says so.
func (d *Dir) OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	name, err := clean(name)
	if err != nil {
		return nil, err
	}
	if err := d.parents(name); err != nil {
		return nil, err
	}
	before, err := d.root.Lstat(name)
	switch {
	case err == nil:
		if err := d.vet(name, before, false); err != nil {
			return nil, err
		}
	case errors.Is(err, fs.ErrNotExist) && flag&os.O_CREATE != 0:
		before = nil
	default:
		return nil, err
	}
	// O_NONBLOCK keeps a FIFO swapped in from blocking the open (it is
	// refused below); it changes nothing for a regular file.
	f, err := d.root.OpenFile(name, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, perm)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*os.File, error) { f.Close(); return nil, err }
	after, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if err := d.vet(name, after, false); err != nil {
		return fail(err)
	}
	if before != nil && !os.SameFile(before, after) {
		return fail(&UnsafeError{Path: d.full(name), Reason: "changed while scry opened it",
			Fix: "stop whatever else writes scry's files in the profile"})
	}
	if before == nil {
		if err := d.give(f, after); err != nil {
			return fail(err)
		}
	}
	return f, nil
}

// give hands a file scry created to the profile's uid.
func (d *Dir) give(f *os.File, fi fs.FileInfo) error {
	if d.uid < 0 || owner(fi) == d.uid {
		return nil
	}
	if err := f.Chown(d.uid, d.gid); err != nil {
		return fmt.Errorf("give %s to uid %d: %w", f.Name(), d.uid, err)
	}
	return nil
}

// ReadFile reads the regular file name, at most limit bytes.
func (d *Dir) ReadFile(name string, limit int64) ([]byte, error) {
	f, err := d.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", d.full(name), limit)
	}
	return b, nil
}

// MkdirAll creates the directory name and its parents as needed, each
// given to the profile's uid, and checks the ones that exist.
func (d *Dir) MkdirAll(name string, perm os.FileMode) error {
	name, err := clean(name)
	if err != nil {
		return err
	}
	parts := strings.Split(name, "/")
	for i := 1; i <= len(parts); i++ {
		p := strings.Join(parts[:i], "/")
		fi, err := d.root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			if err := d.root.Mkdir(p, perm); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("create %s: %w", d.full(p), err)
			}
			if fi, err = d.root.Lstat(p); err == nil && d.uid >= 0 && owner(fi) != d.uid {
				if err := d.root.Lchown(p, d.uid, d.gid); err != nil {
					return fmt.Errorf("give %s to uid %d: %w", d.full(p), d.uid, err)
				}
			}
		}
		if err != nil {
			return err
		}
		if err := d.vet(p, fi, true); err != nil {
			return err
		}
	}
	return nil
}

// Rename renames oldname to newname; a link at either end is renamed or
// replaced, never followed.
func (d *Dir) Rename(oldname, newname string) error {
	for _, n := range []string{oldname, newname} {
		if _, err := clean(n); err != nil {
			return err
		}
		if err := d.parents(n); err != nil {
			return err
		}
	}
	return d.root.Rename(oldname, newname)
}

// Remove removes name; a link is removed, not followed.
func (d *Dir) Remove(name string) error {
	name, err := clean(name)
	if err != nil {
		return err
	}
	if err := d.parents(name); err != nil {
		return err
	}
	return d.root.Remove(name)
}

// Readlink returns the target of the link name.
func (d *Dir) Readlink(name string) (string, error) {
	name, err := clean(name)
	if err != nil {
		return "", err
	}
	if err := d.parents(name); err != nil {
		return "", err
	}
	return d.root.Readlink(name)
}

// WriteFileAtomic replaces name with data so that a crash at any moment
// leaves either the old or the new file, never a torn one: a temp file
// next to it, fsync, rename over, fsync of the directory. uid >= 0 owns
// the new file; -1 gives it to the Dir's uid. A link at name is replaced,
// never followed.
func (d *Dir) WriteFileAtomic(name string, data []byte, perm os.FileMode, uid, gid int) error {
	name, err := clean(name)
	if err != nil {
		return err
	}
	if err := d.parents(name); err != nil {
		return fmt.Errorf("write %s: %w", d.full(name), err)
	}
	if fi, err := d.root.Lstat(name); err == nil && fi.IsDir() {
		return fmt.Errorf("write %s: %w", d.full(name), &UnsafeError{Path: d.full(name), Reason: "is a directory",
			Fix: fmt.Sprintf("remove it (rm -r %q)", d.full(name))})
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	dir, base := path.Split(name)
	tmp := dir + "." + base + ".tmp-" + hex.EncodeToString(rnd[:])
	f, err := d.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", d.full(name), err)
	}
	defer d.root.Remove(tmp) // a no-op after the rename
	if uid < 0 {
		uid, gid = d.uid, d.gid
	}
	step := func(what string, err error) error {
		if err != nil {
			f.Close()
			return fmt.Errorf("%s %s: %w", what, d.full(name), err)
		}
		return nil
	}
	if _, err := f.Write(data); err != nil {
		return step("write", err)
	}
	if err := step("write", f.Chmod(perm)); err != nil {
		return err
	}
	// Keeping a file scry's own (a group it is not in, say) may fail
	// harmlessly; giving it to another uid may not.
	if err := f.Chown(uid, gid); uid >= 0 && uid != os.Geteuid() {
		if err := step("give to uid "+fmt.Sprint(uid), err); err != nil {
			return err
		}
	}
	if err := step("sync", f.Sync()); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", d.full(name), err)
	}
	if err := d.root.Rename(tmp, name); err != nil {
		return fmt.Errorf("replace %s: %w", d.full(name), err)
	}
	if dir == "" {
		dir = "."
	}
	if df, err := d.root.OpenFile(strings.TrimSuffix(dir, "/"), os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0); err == nil {
		_ = df.Sync()
		df.Close()
	}
	return nil
}

// ChownTree gives every file and directory in the profile to uid:gid,
// links themselves (never their targets) included. It refuses a file
// with more than one link that uid does not own yet: the other link may
// be outside the profile.
func (d *Dir) ChownTree(uid, gid int) error {
	return fs.WalkDir(d.root.FS(), ".", func(name string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.root.Lstat(name)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || (int(st.Uid) == uid && int(st.Gid) == gid) {
			return nil
		}
		if fi.Mode().IsRegular() && st.Nlink > 1 && int(st.Uid) != uid {
			return &UnsafeError{Path: d.full(name), Reason: fmt.Sprintf("has %d hard links", st.Nlink),
				Fix: fmt.Sprintf("remove it (rm %q): scry will not give a file that may lie outside the profile to uid %d", d.full(name), uid)}
		}
		if err := d.root.Lchown(name, uid, gid); err != nil {
			return err
		}
		return nil
	})
}
