package partition

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a partition starts (loop, flusher, restore, ingest
// consumer) ends when it is closed.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
