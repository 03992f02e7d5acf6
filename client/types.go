package client

import (
	"fmt"
	"maps"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// The client's own types for what its calls take and return: a program
// needs no import of the generated protobuf package, and a change of the
// wire format is not a change of this API. They are converted to and from
// the generated types at the boundary (convert.go).

// Session is a session token: the changelog offset, per slot, that writes
// reached (Client.Session, GetSession, WatchOptions.From, WatchBatch).
// Its JSON form is the one the CLI prints and takes (--from):
// {"offsets":{"3":"120"},"cluster":"..."}.
type Session struct {
	// Offsets maps a slot to the changelog offset reached in it.
	Offsets map[int32]int64
	// Cluster names the cluster that gave the token; a node refuses a token
	// of another cluster. Empty in a token made by hand.
	Cluster string
}

// Clone returns a copy of s that shares nothing with it (nil for nil).
func (s *Session) Clone() *Session {
	if s == nil {
		return nil
	}
	return &Session{Offsets: maps.Clone(s.Offsets), Cluster: s.Cluster}
}

// MarshalJSON writes s in the token's JSON form (the CLI's).
func (s *Session) MarshalJSON() ([]byte, error) {
	return protojson.Marshal(sessionToProto(s))
}

// UnmarshalJSON reads a token in its JSON form.
func (s *Session) UnmarshalJSON(b []byte) error {
	var p sluicev1.Session
	if err := protojson.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("not a session token (JSON such as {\"offsets\":{\"3\":\"120\"}}): %w", err)
	}
	*s = *sessionFromProto(&p)
	return nil
}

// WriteResult is one entry's outcome of Upsert.
type WriteResult struct {
	// Version is the key's version after the write (1 for a new key).
	Version uint64
	// Timestamp is the partition's hybrid-logical clock stamp of the write.
	Timestamp uint64
	// Slot and Offset are where the change record is in the changelog; a
	// negative Offset (and Version 0): the write pipeline dropped the entry.
	Slot   int32
	Offset int64
}

// Consistency is the level a read is served at.
type Consistency int32

// The read levels (ReadOptions, ScanOptions).
const (
	// Linearizable reads go through the owner's inbox: they see every write
	// acknowledged before them. The default.
	Linearizable Consistency = iota
	// SessionRead reads committed state once the replica has applied the
	// session's writes, on the owner or a standby.
	SessionRead
	// Eventual reads committed state as the replica has it.
	Eventual
)

var consistencyNames = [...]string{Linearizable: "LINEARIZABLE", SessionRead: "SESSION", Eventual: "EVENTUAL"}

// String is the level's name: LINEARIZABLE, SESSION or EVENTUAL.
func (c Consistency) String() string {
	if c >= 0 && int(c) < len(consistencyNames) {
		return consistencyNames[c]
	}
	return fmt.Sprintf("Consistency(%d)", int32(c))
}

// ParseConsistency reads a level's name, in any case: linearizable,
// session or eventual.
func ParseConsistency(name string) (Consistency, error) {
	for c, n := range consistencyNames {
		if strings.EqualFold(name, n) {
			return Consistency(c), nil
		}
	}
	return 0, fmt.Errorf("client: unknown consistency %q (linearizable, session or eventual)", name)
}
