package kafkatxn

import (
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// FranzAbortsInstead is what franz-go (v1.22.3) logs when EndTransaction,
// asked to commit, finds no partition it believes its produces added to the
// transaction and aborts it instead — and then returns nil. It happens when
// a new producer's first transaction produces to a topic the client has not
// loaded yet: the produce succeeds while the topic's metadata is still being
// waited for, and the partition it added is not yet among the client's
// topics. An Append that returned nil then was not committed: 1 to 3 of 400
// fresh appenders lost their first group this way, against kfake and
// against Apache Kafka 4.1 alike (changelog's TestFirstAppendIsCommittedOrFails).
const FranzAbortsInstead = "no produce succeeded in this transaction but produces were attempted; issuing an abort to clear any server-side partition registrations"

// CommitWatch is a transactional producer's logger: it passes every line on
// to the logger the client was configured with, and notes when franz-go
// aborts a transaction it was asked to commit.
type CommitWatch struct {
	inner   kgo.Logger
	aborted atomic.Bool
}

// WatchCommits returns a watch and the option that installs it in front of
// the logger client configures (none: nothing is passed on). Put the option
// after client's.
func WatchCommits(client []kgo.Opt) (*CommitWatch, kgo.Opt, error) {
	probe, err := kgo.NewClient(client...) // connects to nothing: only reads the options
	if err != nil {
		return nil, nil, err
	}
	inner, _ := probe.OptValue(kgo.WithLogger).(kgo.Logger)
	probe.Close()
	if inner == nil {
		inner = kgo.BasicLogger(nil, kgo.LogLevelNone, nil)
	}
	w := &CommitWatch{inner: inner}
	return w, kgo.WithLogger(w), nil
}

// Reset forgets what was seen: call it before beginning a transaction.
func (w *CommitWatch) Reset() { w.aborted.Store(false) }

// Aborted says whether franz-go aborted a commit since Reset: an
// EndTransaction(TryCommit) that returned nil committed nothing.
func (w *CommitWatch) Aborted() bool { return w.aborted.Load() }

// Level is at least Info: the line watched for is logged at Info.
func (w *CommitWatch) Level() kgo.LogLevel { return max(w.inner.Level(), kgo.LogLevelInfo) }

func (w *CommitWatch) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if msg == FranzAbortsInstead {
		w.aborted.Store(true)
	}
	if level <= w.inner.Level() {
		w.inner.Log(level, msg, keyvals...)
	}
}
