package node

import (
	"fmt"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaLogger lets franz-go log through zerolog (the plugin module for it is
// not on the module proxy).
type kafkaLogger struct{ log zerolog.Logger }

func (l kafkaLogger) Level() kgo.LogLevel {
	switch l.log.GetLevel() {
	case zerolog.DebugLevel, zerolog.TraceLevel:
		return kgo.LogLevelDebug
	case zerolog.InfoLevel:
		return kgo.LogLevelInfo
	case zerolog.WarnLevel:
		return kgo.LogLevelWarn
	case zerolog.Disabled:
		return kgo.LogLevelNone
	default:
		return kgo.LogLevelError
	}
}

func (l kafkaLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var ev *zerolog.Event
	switch level {
	case kgo.LogLevelError:
		ev = l.log.Error()
	case kgo.LogLevelWarn:
		ev = l.log.Warn()
	case kgo.LogLevelInfo:
		ev = l.log.Info()
	default:
		ev = l.log.Debug()
	}
	for i := 0; i+1 < len(keyvals); i += 2 {
		key := fmt.Sprint(keyvals[i])
		// An error as its message: as JSON, most errors are {} (a failed
		// SASL login) or kilobytes of fields (a certificate chain).
		if err, ok := keyvals[i+1].(error); ok {
			ev = ev.AnErr(key, err)
			continue
		}
		ev = ev.Interface(key, keyvals[i+1])
	}
	ev.Msg(msg)
}
