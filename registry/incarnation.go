package registry

import (
	"encoding/json"
	"fmt"
)

// A node id names one process at a time. Every start of a node records an
// incarnation of its id (in the same Update that announces the node), one
// above the id's last: the registry then says which process is the node now
// and which one was before it.
//
// A restart may skip the read-lease wait of a partition its store served
// only if the incarnation that recorded so in the store is the one just
// before this one (none other registered between) and ran on this very data
// directory (Dir), whose lock this process now holds: that proves the
// previous process is gone. A copied directory, or another process with the
// same id, finds another Dir or another incarnation, and waits. A node that
// sees a newer incarnation of its own id stops serving.

// Incarnation is one process's run of a node id.
type Incarnation struct {
	Node string `json:"node"`
	// N grows by one at every start of the node id.
	N           uint64 `json:"n"`
	DataAddr    string `json:"data_addr"`
	ControlAddr string `json:"control_addr"`
	// Host and PID name the process in messages.
	Host string `json:"host,omitempty"`
	PID  int    `json:"pid,omitempty"`
	// Dir identifies the data directory the process locked (boot, device
	// and inode of its lock file): equal only for the same directory on the
	// same host since its last boot. Empty when the host cannot tell.
	Dir string `json:"dir,omitempty"`
}

// String names the incarnation for messages.
func (i Incarnation) String() string {
	s := fmt.Sprintf("incarnation %d of node %s at %s", i.N, i.Node, i.DataAddr)
	if i.PID != 0 {
		s += fmt.Sprintf(" (pid %d on %s)", i.PID, i.Host)
	}
	return s
}

const incarnationPrefix = "incarnation/"

// NextIncarnation returns i as its node's next incarnation (N one above the
// last recorded) and the mutation that records it. Write it in the Update
// that announces the node: Updates are serialised, so two processes starting
// with one id get different numbers, and the later is the higher.
func (v *View) NextIncarnation(i Incarnation) (Incarnation, Mutation) {
	i.N = v.Incarnations[i.Node].N + 1
	b, _ := json.Marshal(i)
	return i, Mutation{Key: incarnationPrefix + i.Node, Value: b}
}

// applyIncarnation folds an incarnation record into v. A record never lowers
// the number: a newer incarnation is never taken back.
func applyIncarnation(v *View, key string, value []byte) error {
	id := key[len(incarnationPrefix):]
	if value == nil {
		return fmt.Errorf("registry: %s: an incarnation is never removed", key)
	}
	var i Incarnation
	if err := json.Unmarshal(value, &i); err != nil {
		return err
	}
	if i.Node != id {
		return fmt.Errorf("registry: %s holds node %q", key, i.Node)
	}
	if v.Incarnations == nil {
		v.Incarnations = map[string]Incarnation{}
	}
	if i.N < v.Incarnations[id].N {
		return fmt.Errorf("registry: %s: incarnation %d is below %d", key, i.N, v.Incarnations[id].N)
	}
	v.Incarnations[id] = i
	return nil
}
