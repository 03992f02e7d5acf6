package main

import (
	"github.com/dustin/go-humanize"
	"github.com/spf13/pflag"
)

// bytesFlag is a byte size flag: "64MiB", "1GB", "1048576".
type bytesFlag struct{ n *int64 }

var _ pflag.Value = bytesFlag{}

func (b bytesFlag) String() string {
	if b.n == nil {
		return "0"
	}
	return humanize.IBytes(uint64(*b.n))
}

func (b bytesFlag) Set(s string) error {
	v, err := humanize.ParseBytes(s)
	if err != nil {
		return err
	}
	*b.n = int64(v)
	return nil
}

func (bytesFlag) Type() string { return "bytes" }

// bytesVar defines a byte size flag with a default.
func bytesVar(f *pflag.FlagSet, p *int64, name string, def int64, usage string) {
	*p = def
	f.Var(bytesFlag{p}, name, usage)
}
