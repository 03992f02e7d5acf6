//go:build unix

package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrDataDirLocked is returned by Start when another process holds the data
// directory.
var ErrDataDirLocked = errors.New("node: data directory in use")

// dirLock is an exclusive lock (flock) on a node's data directory, held while
// the node runs. The kernel drops it when the process ends, however it ends:
// a node that holds it knows no earlier process of its directory is still
// alive (and serving), and two nodes never share a directory (or the embedded
// broker's log in it).
type dirLock struct{ f *os.File }

// lockDataDir takes dir's lock, or fails at once naming dir and the pid that
// holds it.
func lockDataDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("node: locking the data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		holder := "another process"
		if pid := strings.TrimSpace(string(b)); pid != "" {
			holder = "process " + pid
		}
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is locked by %s (another sluice serve?); stop it or use another --data-dir", ErrDataDirLocked, dir, holder)
		}
		return nil, fmt.Errorf("node: locking the data directory %s: %w", dir, err)
	}
	// The pid is only for that message: the lock is the flock, not the file.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{f: f}, nil
}

// bootIDFile holds a random id the kernel draws at every boot (Linux).
const bootIDFile = "/proc/sys/kernel/random/boot_id"

// identity names the locked directory on this host since its last boot: the
// boot's id and the device and inode of the lock file. A copy of the
// directory, or a directory on another host (a cloned disk has the same
// inode numbers, not the same boot), has another; "" when the host cannot
// tell (no boot id), which never matches.
func (l *dirLock) identity() string {
	if l == nil {
		return ""
	}
	boot, err := os.ReadFile(bootIDFile)
	if err != nil || len(strings.TrimSpace(string(boot))) == 0 {
		return ""
	}
	fi, err := l.f.Stat()
	if err != nil {
		return ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return fmt.Sprintf("%s/%d/%d", strings.TrimSpace(string(boot)), uint64(st.Dev), uint64(st.Ino))
}

// release drops the lock.
func (l *dirLock) release() {
	if l != nil {
		l.f.Close()
	}
}
