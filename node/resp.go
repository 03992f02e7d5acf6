package node

import (
	"github.com/sluicedb/sluice/resp"
)

// startRESP serves the RESP port (--resp-addr) on its listener, bound
// with the others at start: the data plane of the data port (n.data), its
// token, TLS and limits; keys this node does not serve are forwarded
// through its own data port's address. Like the gRPC ports it serves only
// once the routing table is loaded, and Close stops it gracefully first.
func (n *Node) startRESP() error {
	if n.respLn == nil {
		return nil
	}
	level, err := resp.ParseConsistency(n.cfg.RESPConsistency)
	if err != nil {
		return err
	}
	n.resp, err = resp.New(resp.Config{Data: n.data, Token: n.cfg.DataToken, TLS: n.cfg.DataTLS, Consistency: level,
		Forward: []string{n.DataAddr()}, PeerTLS: n.cfg.PeerTLS, Log: n.cfg.Log, Panics: n.panics})
	if err != nil {
		return err
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.resp.Serve(n.respLn); err != nil {
			n.cfg.Log.Error().Err(err).Msg("RESP port stopped")
		}
	}()
	return nil
}

// RESPAddr is the RESP port's address, or "" when it is off.
func (n *Node) RESPAddr() string {
	if n.respLn == nil {
		return ""
	}
	return n.respLn.Addr().String()
}
