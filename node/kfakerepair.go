package node

import (
	"fmt"
	"time"

	"github.com/sluicedb/sluice/internal/kfakerepair"
)

// repairEmbeddedLog finishes, before the embedded broker starts, what a
// kill -9, a power cut or a full disk left half done in its log
// (internal/kfakerepair): torn tails cut, open transactions ended as their
// coordinator decided (else aborted), segment indexes rebuilt.
func (n *Node) repairEmbeddedLog(dir string) error {
	rep, err := kfakerepair.Repair(dir, time.Now())
	for _, line := range rep.Lines() {
		n.cfg.Log.Warn().Msg("embedded broker: " + line)
	}
	if err != nil {
		return fmt.Errorf("node: repairing the embedded broker's log: %w", err)
	}
	return nil
}

// embeddedBrokerConfigs are the embedded broker's settings.
//
// log.cleaner.backoff.ms is how often (ms) it compacts: once a century,
// that is never. kfake's compaction, unlike Kafka's, moves a slot's log
// start up to the first record it keeps, and a partition that must replay
// a slot from before it (a new partition, a lost disk) then refuses to
// start ("the log starts at …"): the embedded log keeps every record
// instead, at the cost of disk.
//
// state.log.compact.bytes is the size at which kfake rewrites pids.log as
// one entry a producer (and it does at a clean shutdown): 64 MiB instead of
// 10. The crash repair counts the endtx entries since an epoch began to
// know which transaction a crash cut short in its EndTxn; a compaction
// forgets them, and a transaction of an epoch that began before it is then
// aborted, not committed (half a transaction if its EndTxn was under way).
// A sluice transaction adds about 180 bytes to pids.log (9,815 group
// commits: 1.7 MB, beside 4.9 MB of segments), so 64 MiB is some 380,000
// transactions between compactions, and a read of under a second at start.
var embeddedBrokerConfigs = map[string]string{
	"log.cleaner.backoff.ms":  embeddedCleanerBackoff,
	"state.log.compact.bytes": embeddedStateLogCompactBytes,
}

const (
	embeddedCleanerBackoff       = "3153600000000"
	embeddedStateLogCompactBytes = "67108864" // 64 MiB
)
