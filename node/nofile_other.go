//go:build !unix

package node

// openFileLimit is unknown without RLIMIT_NOFILE: a modest 1024.
func openFileLimit() int { return 1024 }
