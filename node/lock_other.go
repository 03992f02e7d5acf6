//go:build !unix

package node

import "errors"

// ErrDataDirLocked is returned by Start when another process holds the data
// directory.
var ErrDataDirLocked = errors.New("node: data directory in use")

// dirLock is not available without flock: nothing is locked, and a restarted
// partition always waits its read lease.
type dirLock struct{}

func lockDataDir(string) (*dirLock, error) { return nil, nil }

func (*dirLock) release() {}

// identity is unknown: a restart never skips the read-lease wait.
func (*dirLock) identity() string { return "" }
