package kv

import "time"

// IngestRecord is one record of the ingest topic, as a partition sees it.
type IngestRecord struct {
	Slot   int32
	Offset int64
	Key    []byte
	Value  []byte
	Remove bool
	TTL    time.Duration
	// Headers are kept for the dead-letter copy and forwarding.
	Headers []Header
	// Err is set when the record could not be read (a bad header): it goes to
	// the dead-letter topic with this reason.
	Err error
}

// Header is one Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Size is the record's bytes as the log holds them: key, value and headers.
func (r IngestRecord) Size() int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}
