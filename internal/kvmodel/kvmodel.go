// Package kvmodel is sluice's key-value semantics as a porcupine model, for
// the tests that check histories for linearizability: the partition
// simulator and the integration campaign against real Kafka.
//
//	var h kvmodel.History
//	h.Add(client, kvmodel.Input{Op: "put", Key: "a", Value: "x"}, call, kvmodel.Output{Version: 1}, ret)
//	ok := porcupine.CheckOperations(kvmodel.Model, h.Operations())
package kvmodel

import (
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Input is one operation: get, put, cas (Expect: the version expected, 0 for
// absent), rm, incr (Delta).
type Input struct {
	Op     string
	Key    string
	Value  string
	Expect uint64
	Delta  int64
}

// Output is what the operation returned.
type Output struct {
	// Unknown: a write whose outcome the client could not learn; it may or
	// may not have happened (its return is taken as never).
	Unknown bool
	// OK: cas applied; rm: the key existed; get: found.
	OK      bool
	Value   string
	Version uint64
	Counter int64
}

// State is one key's state.
type State struct {
	Value   string
	Version uint64 // 0: never written
	Present bool
}

// Model is one key of sluice (porcupine partitions the history by key): every
// write bumps the version, a removal too: a removed key is absent and the
// next write continues from its version (no ABA).
var Model = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(Input).Key
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() any { return State{} },
	Step: func(st, in, out any) (bool, any) {
		s, i, o := st.(State), in.(Input), out.(Output)
		switch i.Op {
		case "get":
			return o.OK == s.Present && (!o.OK || (o.Value == s.Value && o.Version == s.Version)), s
		case "put":
			next := State{i.Value, s.Version + 1, true}
			return o.Unknown || o.Version == next.Version, next
		case "cas":
			if (i.Expect == 0 && s.Present) || (i.Expect != 0 && (!s.Present || s.Version != i.Expect)) {
				return o.Unknown || !o.OK, s
			}
			next := State{i.Value, s.Version + 1, true}
			return o.Unknown || (o.OK && o.Version == next.Version), next
		case "incr":
			n := int64(0)
			if s.Present {
				var err error
				if n, err = strconv.ParseInt(s.Value, 10, 64); err != nil || strconv.FormatInt(n, 10) != s.Value {
					return o.Unknown || !o.OK, s // a decimal in the one form the partition writes
				}
			}
			if (i.Delta > 0 && n > math.MaxInt64-i.Delta) || (i.Delta < 0 && n < math.MinInt64-i.Delta) {
				return o.Unknown || !o.OK, s
			}
			next := State{strconv.FormatInt(n+i.Delta, 10), s.Version + 1, true}
			return o.Unknown || (o.OK && o.Counter == n+i.Delta && o.Version == next.Version), next
		default: // rm
			if !s.Present {
				return o.Unknown || !o.OK, s
			}
			return o.Unknown || o.OK, State{Version: s.Version + 1}
		}
	},
	DescribeOperation: func(in, out any) string {
		i, o := in.(Input), out.(Output)
		return fmt.Sprintf("%s(%s %q expect=%d delta=%d) -> %+v", i.Op, i.Key, i.Value, i.Expect, i.Delta, o)
	},
}

// History records operations, from many goroutines if need be.
type History struct {
	mu  sync.Mutex
	ops []porcupine.Operation
}

// Add records one operation; an Unknown one may take effect at any time after
// its call.
func (h *History) Add(client int, in Input, call time.Time, out Output, ret time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := ret.UnixNano()
	if out.Unknown {
		r = math.MaxInt64
	}
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call.UnixNano(), Output: out, Return: r})
}

// Operations are the recorded operations.
func (h *History) Operations() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]porcupine.Operation(nil), h.ops...)
}
