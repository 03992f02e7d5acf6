package registry

import "errors"

// Errors of the registry's placement rules (placement.go); server/status.go
// maps them to gRPC codes.
var (
	// ErrNotFound: no partition has the id or the exact range named.
	ErrNotFound = errors.New("registry: no such partition")
	// ErrOverlap: a new partition's slots overlap an existing one's.
	ErrOverlap = errors.New("registry: slot ranges overlap")
	// ErrExists: a partition with the id asked for exists.
	ErrExists = errors.New("registry: partition exists")
	// ErrUnknownNode: no node of that id has announced itself.
	ErrUnknownNode = errors.New("registry: unknown node")
	// ErrNoNodes: no node has announced itself yet, so none can be chosen.
	ErrNoNodes = errors.New("registry: no node has announced itself yet")
	// ErrInvalid: a request the rules refuse (a reserved id, more standbys
	// than other nodes).
	ErrInvalid = errors.New("registry: invalid request")
	// ErrCannotCarry: a partition's data could not follow the change asked
	// for (modes.go): its owner or the node named runs a storage mode that
	// cannot hand it over or take it.
	ErrCannotCarry = errors.New("registry: the partition's data cannot follow")
	// ErrIDsExhausted: the partition id counter reached MaxPartitionID; ids
	// are never reused, so no partition can be added.
	ErrIDsExhausted = errors.New("registry: partition ids exhausted")
)
