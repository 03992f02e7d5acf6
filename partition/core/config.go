package core

import (
	"time"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/pipeline"
)

// Config describes a partition to its core. Zero values take the defaults
// written on each field.
type Config struct {
	ID    uint32
	Range keyspace.Range
	// Slots is the cluster's slot count.
	Slots int32
	Epoch uint64
	// Lease is how long a committed group proves that this partition still
	// owns its slots (see the package doc). 0 disables the check (a single
	// owner that can never be deposed).
	Lease time.Duration
	// LeaseWait is how long a restored partition waits after fencing before
	// it serves, so that a deposed owner's lease has run out. Default Lease;
	// longer where a commit proves ownership for less than the lease a
	// deposed owner may still hold (a log that cannot fence: node's
	// ownership lease for --wal disk and none).
	LeaseWait time.Duration
	// WindowSize bounds replies held by the line monitor. Default 8192.
	WindowSize int
	// MaxGroupBytes bounds one append group (one transaction). Default 16 MiB.
	MaxGroupBytes int
	// DrainTimeout bounds how long a graceful close waits for the group in
	// flight. Default 10s.
	DrainTimeout time.Duration
	// Stages run on every upsert, from gRPC and from ingest alike, after
	// validation and the clock and before the state machine.
	Stages []pipeline.Stage
}

func (c *Config) setDefaults() {
	if c.LeaseWait == 0 {
		c.LeaseWait = c.Lease
	}
	if c.WindowSize == 0 {
		c.WindowSize = 8192
	}
	if c.MaxGroupBytes == 0 {
		c.MaxGroupBytes = 16 << 20
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 10 * time.Second
	}
}
