package client

import sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"

// The client's own names for what its calls take and return, so a program
// needs no import of the generated protobuf package. They are aliases: a
// value of the generated type is one of these and the other way round.
type (
	// Session is a session token: the changelog offset, per slot, that a
	// client's writes reached (Client.Session, GetSession, WatchOptions.From).
	Session = sluicev1.Session
	// WriteResult is one entry's outcome of Upsert: its version, slot and
	// changelog offset (negative: the write pipeline dropped it).
	WriteResult = sluicev1.WriteResult
	// Consistency is the level a read is served at.
	Consistency = sluicev1.Consistency
)

// The read levels (ReadOptions, ScanOptions).
const (
	// Linearizable reads go through the owner's inbox: they see every write
	// acknowledged before them. The default.
	Linearizable = sluicev1.Consistency_LINEARIZABLE
	// SessionRead reads committed state once the replica has applied the
	// session's writes, on the owner or a standby.
	SessionRead = sluicev1.Consistency_SESSION
	// Eventual reads committed state as the replica has it.
	Eventual = sluicev1.Consistency_EVENTUAL
)
