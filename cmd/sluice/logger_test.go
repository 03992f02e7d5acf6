package main

import (
	"bytes"
	"regexp"
	"testing"
)

// Both formats stamp every line to the millisecond (issue: one-second
// timestamps could not order a partition's restore events).
func TestLogLinesHaveMilliseconds(t *testing.T) {
	cases := map[string]*regexp.Regexp{
		"json":    regexp.MustCompile(`^\{"level":"info","partition":3,"epoch":7,"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)","message":"serving"\}`),
		"console": regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d) INF serving epoch=7 partition=3`),
	}
	for format, want := range cases {
		var buf bytes.Buffer
		log, err := newLogger(&buf, "info", format)
		if err != nil {
			t.Fatal(err)
		}
		log.Info().Uint32("partition", 3).Uint64("epoch", 7).Msg("serving")
		if !want.Match(buf.Bytes()) {
			t.Errorf("%s: %q does not match %s", format, buf.String(), want)
		}
	}
	if _, err := newLogger(&bytes.Buffer{}, "info", "xml"); err == nil {
		t.Error("--log-format xml was accepted")
	}
}
