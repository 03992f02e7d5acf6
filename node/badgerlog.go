package node

import (
	"fmt"
	"strings"

	"github.com/rs/zerolog"
)

// badgerLog sends badger's warnings and errors to the node's log, marked
// component=badger with the partition. store.BadgerOptions silences badger
// (its default writes to stderr, and its info lines are many); but some of
// its failures are only logged, never returned: a failed sync of its value
// log, a failed compaction or memtable flush (which it retries).
type badgerLog struct{ log zerolog.Logger }

func newBadgerLog(log zerolog.Logger, partition uint32) badgerLog {
	return badgerLog{log: log.With().Str("component", "badger").Uint32("partition", partition).Logger()}
}

func (b badgerLog) Errorf(format string, args ...any) {
	b.log.Error().Msg(strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (b badgerLog) Warningf(format string, args ...any) {
	b.log.Warn().Msg(strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (badgerLog) Infof(string, ...any)  {}
func (badgerLog) Debugf(string, ...any) {}
