package client

import (
	"maps"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// Conversions between the client's types and the generated ones, at the
// boundary of every call. Nothing generated is handed to or kept from the
// caller: a converted value shares no map with the message it came from.

func sessionToProto(s *Session) *sluicev1.Session {
	if s == nil {
		return nil
	}
	return &sluicev1.Session{Offsets: maps.Clone(s.Offsets), Cluster: s.Cluster}
}

func sessionFromProto(s *sluicev1.Session) *Session {
	if s == nil {
		return nil
	}
	return &Session{Offsets: maps.Clone(s.Offsets), Cluster: s.Cluster}
}

func writeResultFromProto(r *sluicev1.WriteResult) *WriteResult {
	if r == nil {
		return nil
	}
	return &WriteResult{Version: r.Version, Timestamp: r.Timestamp, Slot: r.Slot, Offset: r.Offset}
}

// consistencyToProto maps a level to the wire's; an unknown one keeps its
// number, for the node to refuse with InvalidArgument.
func consistencyToProto(c Consistency) sluicev1.Consistency {
	switch c {
	case Linearizable:
		return sluicev1.Consistency_LINEARIZABLE
	case SessionRead:
		return sluicev1.Consistency_SESSION
	case Eventual:
		return sluicev1.Consistency_EVENTUAL
	}
	return sluicev1.Consistency(c)
}
