package snapshot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Confine resolves path, where a caller asked for a snapshot to be written,
// against root, the one folder snapshots may be written under: a relative
// path is taken under root, an absolute one must already be inside it, and
// neither may leave it by .. or through a symlink (the part of the path that
// exists is resolved with its symlinks). The root is made (0700) if missing.
// It returns the folder to write into, symlinks resolved; a path that leaves
// the root is an error wrapping ErrOutsideRoot that names the root.
func Confine(root, path string) (string, error) {
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("snapshot: root %q: %w", root, err)
	}
	if err := os.MkdirAll(absRoot, DirMode); err != nil {
		return "", fmt.Errorf("snapshot: making the snapshot root: %w", err)
	}
	realRoot, err := filepath.EvalSymlinks(absRoot)
	if err != nil {
		return "", fmt.Errorf("snapshot: the snapshot root: %w", err)
	}
	p := path
	if !filepath.IsAbs(p) {
		p = filepath.Join(absRoot, p)
	}
	p = filepath.Clean(p)
	refuse := func(why string) error {
		return fmt.Errorf("%w: %q %s the snapshot root %s (--snapshot-root); give a path inside it, or one relative to it", ErrOutsideRoot, path, why, absRoot)
	}
	if !within(absRoot, p) && !within(realRoot, p) {
		return "", refuse("is outside")
	}
	real, err := resolveExisting(p)
	if err != nil {
		return "", refuse(fmt.Sprintf("cannot be resolved (%v) inside", err))
	}
	if !within(realRoot, real) {
		return "", refuse("leads through a symlink out of")
	}
	return real, nil
}

// within reports whether p is root or below it (both clean and absolute).
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && (rel == "." || filepath.IsLocal(rel))
}

// resolveExisting resolves the symlinks of the longest part of p that exists
// and appends the rest, which does not exist yet and so holds no symlink.
func resolveExisting(p string) (string, error) {
	rest := ""
	for cur := p; ; {
		if _, err := os.Lstat(cur); err == nil {
			real, err := filepath.EvalSymlinks(cur)
			if err != nil {
				return "", err // a dangling symlink
			}
			return filepath.Join(real, rest), nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return p, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}
