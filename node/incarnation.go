package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/registry"
	"github.com/sluicedb/sluice/server"
)

// One node id, one live process (registry/incarnation.go). At start a node
// asks the process its id last registered whether it is still alive, and
// refuses to start if so; it then registers its own incarnation, one above.
// What the start-up check cannot see (a previous process it cannot reach,
// two processes starting at once) the incarnations settle: a node that sees
// a newer incarnation of its own id stops serving, and a restart skips a
// partition's read-lease wait only when the store's record was written by
// the incarnation just before it on this very directory (resumable).

// ErrNodeIDInUse is returned by Start when a live process already serves
// the node id.
var ErrNodeIDInUse = errors.New("node: node id in use")

// ErrSuperseded is the cause a node gives (Err) when it stopped serving
// because a newer process of its node id registered.
var ErrSuperseded = errors.New("node: a newer process of this node id registered")

// ErrPreviousUnknown is returned by Start when the process the node id last
// registered cannot be asked whether it is alive (Config.TakeOver).
var ErrPreviousUnknown = errors.New("node: cannot tell whether the previous process of this node id is alive")

// ErrDataDirCopied is returned by Start when, on an embedded broker, the
// node id last ran on another data directory (Config.MovedDataDir).
var ErrDataDirCopied = errors.New("node: the data directory is not the one this node id last ran on")

// probeTimeout bounds the start-up question to the previous process: a
// refused connection answers at once; an address that swallows packets
// (or a frozen process) delays the start this long, and the start is
// refused unless the operator says the other is gone (Config.TakeOver). A
// start that went on would serve beside a process that may thaw: with the
// embedded broker nothing fences it (its log is its own), and even with a
// shared Kafka it answers reads until it sees this one.
const probeTimeout = 5 * time.Second

// incarnationService is the gRPC health service name under which the
// process of incarnation i reports SERVING on its data port while it runs
// (the data port's health needs no token). No other process answers to it.
func incarnationService(i registry.Incarnation) string {
	return "sluice.incarnation/" + i.Node + "/" + strconv.FormatUint(i.N, 10)
}

// previousIncarnation returns the incarnation the node id last registered,
// or ErrNodeIDInUse naming its address if that process still answers.
func (n *Node) previousIncarnation(ctx context.Context) (registry.Incarnation, error) {
	prev := n.registry.View().Incarnations[n.cfg.NodeID]
	if prev.N == 0 {
		return prev, nil
	}
	if err := n.sameDataDir(prev); err != nil {
		return prev, err
	}
	if prev.DataAddr == n.DataAddr() {
		// This process listens there now: on this host no other does.
		// (Another host advertising the same address is not told apart
		// here: the incarnations settle it.)
		return prev, nil
	}
	alive, err := n.probe(ctx, prev)
	switch {
	case alive:
		return prev, fmt.Errorf("%w: %s is alive; stop it, or give this process another --node-id", ErrNodeIDInUse, prev)
	case err != nil && !n.cfg.TakeOver:
		return prev, fmt.Errorf("%w: asking %s: %v; if it is alive, stop it (or give this process another --node-id); if you know it is gone (its host is down), start with --take-over", ErrPreviousUnknown, prev, err)
	case err != nil:
		n.cfg.Log.Warn().Err(err).Str("previous", prev.String()).
			Msg("could not tell whether the previous process of this node id is alive; --take-over: starting anyway (if it is alive, it stops serving once it sees this one, and this one waits the read lease)")
	}
	return prev, nil
}

// sameDataDir refuses, with the embedded broker, a data directory that is
// not the one the node id last ran on (prev.Dir): a copy of it. The
// embedded broker's log, registry included, is in the directory, so a copy
// is a fork of the whole cluster: the copy and its original each fence
// only their own log, both serve the node id and acknowledge different
// writes at the same offsets, and no start-up probe can be relied on to
// see the other (it may be stopped, or start at the same time). With a
// shared Kafka a copy is fenced like any other process: not checked.
//
// The directory is the same when its lock file is the same file (device,
// inode) and either the boot is the same or, after a reboot (a new boot
// id), the host name is. Moved on purpose: Config.MovedDataDir.
func (n *Node) sameDataDir(prev registry.Incarnation) error {
	if n.embedded == nil || n.cfg.MovedDataDir || prev.Dir == "" {
		return nil // a shared Kafka; a deliberate move; a registry or host that cannot tell
	}
	host, _ := os.Hostname()
	if sameDir(prev.Dir, prev.Host, n.lock.identity(), host) {
		return nil
	}
	return fmt.Errorf("%w: %s ran on another directory (%s), and %s is not it (%s): a copy of an embedded broker's data directory is a fork of the cluster that nothing fences; "+
		"run the original, or, if you moved this directory on purpose and no other copy of it runs, start once with --moved-data-dir",
		ErrDataDirCopied, prev, prev.Dir, n.cfg.DataDir, n.lock.identity())
}

// sameDir reports whether identities a (host ha) and b (host hb), each
// boot/device/inode (dirLock.identity), name the same directory: the same
// file, in the same boot, or after a reboot on the same host. "" never
// matches.
func sameDir(a, ha, b, hb string) bool {
	if a == "" || b == "" {
		return false
	}
	if a == b {
		return true
	}
	bootA, fileA, okA := strings.Cut(a, "/")
	bootB, fileB, okB := strings.Cut(b, "/")
	return okA && okB && bootA != bootB && fileA == fileB && ha != "" && ha == hb
}

// probe asks prev's data port whether prev's process is still there: only
// it reports SERVING for its incarnation's health name. NotFound is another
// process at that address; a refused connection, no process.
func (n *Node) probe(ctx context.Context, prev registry.Incarnation) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", prev.DataAddr)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return false, nil // nothing listens there
	}
	if err != nil {
		return false, err
	}
	c.Close()
	cc, err := grpc.NewClient(server.Target(prev.DataAddr), grpc.WithTransportCredentials(n.cfg.transport().peer))
	if err != nil {
		return false, err
	}
	defer cc.Close()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: incarnationService(prev)})
	switch status.Code(err) {
	case codes.OK:
		return resp.Status == healthpb.HealthCheckResponse_SERVING, nil
	case codes.NotFound:
		return false, nil // another process, which knows no such incarnation
	}
	return false, err
}

// nextIncarnation returns this process's incarnation, one above prev, and
// the mutation that records it, from v (the view an Update validates
// against). A process of the id registered since prev was read started at
// the same time as this one: this one refuses, naming it.
func (n *Node) nextIncarnation(v *registry.View, prev registry.Incarnation) (registry.Incarnation, registry.Mutation, error) {
	if now := v.Incarnations[n.cfg.NodeID]; now != prev {
		return registry.Incarnation{}, registry.Mutation{}, fmt.Errorf("%w: %s registered while this process was starting; stop it, or give this process another --node-id", ErrNodeIDInUse, now)
	}
	host, _ := os.Hostname()
	inc, m := v.NextIncarnation(registry.Incarnation{Node: n.cfg.NodeID, DataAddr: n.DataAddr(), ControlAddr: n.ControlAddr(),
		Host: host, PID: os.Getpid(), Dir: n.lock.identity()})
	return inc, m, nil
}

// resumable reports whether a partition whose store records that it served
// under incarnation by may skip its read-lease wait: by is the incarnation
// just before this one (none registered between) and ran on this very
// directory, whose lock this process holds, so that process is gone.
func (n *Node) resumable(by uint64) bool {
	return n.lock != nil && by != 0 && by == n.prevInc.N && n.inc.N == by+1 && n.inc.Dir != "" && n.prevInc.Dir == n.inc.Dir
}

// watchIncarnation stops the node once the registry holds a newer
// incarnation of its id: another process now is this node. It has fenced
// this one's producers, or will; this one's reads stop with it.
func (n *Node) watchIncarnation() {
	defer n.wg.Done()
	for {
		ch := n.registry.Changed()
		if now := n.registry.View().Incarnations[n.cfg.NodeID]; now.N > n.inc.N {
			n.supersede(now)
			return
		}
		select {
		case <-n.stop:
			return
		case <-ch:
		}
	}
}

// supersede stops serving in favour of newer.
func (n *Node) supersede(newer registry.Incarnation) {
	n.stopServing(fmt.Errorf("%w: %s; this process (incarnation %d) stops serving", ErrSuperseded, newer, n.inc.N))
}

// stopServing stops the node of its own accord, for err: health says
// NOT_SERVING at once, and the node closes (Done, Err). The first cause
// counts.
func (n *Node) stopServing(err error) {
	n.doneOnce.Do(func() {
		n.cfg.Log.Error().Err(err).Msg("the node stops serving")
		if n.health != nil {
			n.health.Shutdown()
		}
		n.doneErr = err
		close(n.done)
		go n.Close()
	})
}

// closing reports whether the node closes, or has not yet started: what
// its listeners' closing is then not a loss.
func (n *Node) closing() bool {
	select {
	case <-n.stop:
		return true
	default:
		return !n.started.Load()
	}
}

// Done is closed when the node stopped serving of its own accord: a newer
// process of its node id registered (ErrSuperseded), or its embedded broker
// stopped listening (ErrEmbeddedBrokerLost). Err then says why.
func (n *Node) Done() <-chan struct{} { return n.done }

// Err is why Done was closed (wrapping ErrSuperseded or
// ErrEmbeddedBrokerLost), or nil.
func (n *Node) Err() error {
	select {
	case <-n.done:
		return n.doneErr
	default:
		return nil
	}
}
