package main

import (
	"fmt"
	"io"
	"os"

	"github.com/rs/zerolog"
	"golang.org/x/term"
)

// LogTimeFormat is the time of every log line, in both formats: RFC 3339
// with milliseconds and the zone, so that a partition's restore, fencing and
// serving events order and restart-to-serve can be measured from the log.
const LogTimeFormat = "2006-01-02T15:04:05.000Z07:00"

// logLevels are the levels --log-level takes.
const logLevels = "trace, debug, info, warn, error, fatal, panic or disabled"

// newLogger builds the node's logger: JSON, or human-readable (format
// "console", or "auto" on a terminal), at level. zerolog keeps the time format
// of JSON lines in a package variable; this is the one place that sets it.
func newLogger(out io.Writer, level, format string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" || lvl == zerolog.NoLevel {
		// zerolog's own error ("defaulting to NoLevel") names no valid level.
		return zerolog.Logger{}, usageError(fmt.Errorf("--log-level %q: want %s", level, logLevels))
	}
	zerolog.TimeFieldFormat = LogTimeFormat
	f, isFile := out.(*os.File)
	terminal := isFile && term.IsTerminal(int(f.Fd()))
	w := out
	switch format {
	case "json":
	case "console", "auto":
		if format == "console" || terminal {
			// Colours only on a terminal: not as escape codes in a file.
			w = zerolog.ConsoleWriter{Out: out, TimeFormat: LogTimeFormat, NoColor: !terminal}
		}
	default:
		return zerolog.Logger{}, usageError(fmt.Errorf("--log-format %q: want json, console or auto", format))
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}
