//go:build unix

package node

import "syscall"

// openFileLimit is the process's soft RLIMIT_NOFILE (which Go raised to the
// hard limit at start), or 1024 if it cannot be read.
func openFileLimit() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur == 0 {
		return 1024
	}
	return int(min(r.Cur, 1<<30))
}
