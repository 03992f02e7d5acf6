package integration

import (
	"os"
	"strings"
	"testing"
	"time"
)

// --wal disk and none: a planned move hands the partition over through the
// bucket (the old owner stops intake and uploads a final snapshot, the new
// one waits for it and restores it). Writes go on through three moves;
// every acknowledged write is on the last owner, applied once.
func TestPlannedMovesHandOffThroughTheBucket(t *testing.T) {
	for _, mode := range [][]string{{"--wal", "disk"}, {"--wal", "none"}} {
		t.Run(strings.Join(mode, " "), func(t *testing.T) {
			c := startCluster(t, append(mode, "--snapshot-url", "file://"+t.TempDir())...)
			n := movesUnderWrites(t, c, 500*time.Millisecond, 60*time.Second)
			for _, id := range []string{"n1", "n2", "n3"} {
				if log, _ := os.ReadFile(c.nodes[id].logPath); id != "n1" && !strings.Contains(string(log), "final snapshot uploaded") {
					t.Errorf("%s handed partition 1 on without a final snapshot", id)
				}
			}
			t.Logf("%d writes acknowledged across 3 moves of partition 1, all present once", n)
		})
	}
}
