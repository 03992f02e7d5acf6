//go:build linux || darwin || freebsd

package store

import (
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// hasRoom refuses a cache whose disk (of dir, or of its nearest existing
// parent) has less than cacheRoom free.
func hasRoom(dir string) error {
	var st unix.Statfs_t
	for d := dir; ; {
		err := unix.Statfs(d, &st)
		if err == nil {
			break
		}
		parent := filepath.Dir(d)
		if parent == d {
			return nil // nothing to measure: let badger try
		}
		d = parent
	}
	if free := st.Bavail * uint64(st.Bsize); free < cacheRoom {
		return fmt.Errorf("%w: %d bytes free, a cache maps %d", ErrCacheNoRoom, free, cacheRoom)
	}
	return nil
}
