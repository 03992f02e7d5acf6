package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sluicedb/sluice/server"
)

// startGRPC serves the data and control ports on their listeners: the data
// port open or behind a token and client certificates as configured, the
// control port behind its token and rate limit, with small messages only.
// Every call but health and reflection is answered UNAVAILABLE while the
// node is not ready (n.ready). A panic in a handler is recovered, but it is
// the order of Start (the table first) that keeps calls away from a node
// without a routing table.
func (n *Node) startGRPC(reg *prometheus.Registry, tr transport) {
	panics := server.NewPanics(reg)
	n.panics = panics
	readyU, readyS := server.RequireReady(n.ready, server.HealthService, server.ReflectionService, server.ReflectionServiceV1Alpha)
	var dataUnary []grpc.UnaryServerInterceptor
	var dataStream []grpc.StreamServerInterceptor
	if n.cfg.DataToken != "" {
		u, s := server.RequireToken("data plane", n.cfg.DataToken, server.HealthService)
		dataUnary, dataStream = append(dataUnary, u), append(dataStream, s)
	}
	dataUnary, dataStream = append(dataUnary, readyU), append(dataStream, readyS)
	reads := server.NewReadMemory(n.cfg.ReadMemory)
	n.dataSrv, n.health = server.NewGRPCServer(server.Port{Name: "data", Log: n.cfg.Log, Metrics: reg, Panics: panics, MaxConcurrentStreams: n.cfg.DataMaxStreams,
		Unary: dataUnary, Stream: dataStream, Options: append(serverCreds(tr.data), reads.ServerOptions()...)})
	n.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	n.data = &server.Data{Node: n.cfg.NodeID, Table: n.table.Load, TableConfirmed: n.tableConfirmed, Local: n.local,
		Cluster: n.clusterIdentity(), Changelog: n.watchLog(), WatchRefused: n.watchRefused(), Stopping: n.stop, ReadMemory: reads,
		Standby: func(id uint32) (server.CommittedReader, bool) {
			if sb, ok := n.standby(id); ok && sb.CaughtUp() {
				return sb, true
			}
			return nil, false
		}}
	server.RegisterData(n.dataSrv, n.data)
	// Streams (reflection, health watches) authenticate like unary calls;
	// the token is checked before the rate limit, so that callers without
	// it cannot use up the budget.
	// Health without the token: an orchestrator's probe has none.
	tokenU, tokenS := server.RequireToken("control plane", n.cfg.ControlToken, server.HealthService)
	rateU, rateS := server.RateLimit(n.cfg.ControlRate, max(1, int(n.cfg.ControlRate)))
	n.controlSrv, _ = server.NewGRPCServer(server.Port{Name: "control", Log: n.cfg.Log, Metrics: prometheus.NewRegistry(), Panics: panics,
		MaxRecvMsgBytes: server.ControlMaxRecvMsgBytes, MaxConcurrentStreams: n.cfg.ControlMaxStreams,
		Unary: []grpc.UnaryServerInterceptor{tokenU, rateU, readyU}, Stream: []grpc.StreamServerInterceptor{tokenS, rateS, readyS},
		Options: serverCreds(tr.control)})
	n.control = &server.Control{Node: n.cfg.NodeID, Cluster: n, Token: n.cfg.ControlToken, PeerCreds: tr.peer}
	server.RegisterControl(n.controlSrv, n.control)
	for _, s := range []struct {
		srv *grpc.Server
		ln  net.Listener
	}{{n.dataSrv, n.dataLn}, {n.controlSrv, n.controlLn}} {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				n.cfg.Log.Error().Err(err).Msg("gRPC port stopped")
			}
		}()
	}
}

// ready says why the node serves no call yet: it has no routing table until
// the partition manager's first reconcile (or while the registry's view
// makes none).
func (n *Node) ready() error {
	if n.table.Load() == nil {
		return fmt.Errorf("node %s is starting: it has no routing table yet; retry shortly", n.cfg.NodeID)
	}
	return nil
}

func serverCreds(c *tls.Config) []grpc.ServerOption {
	if c == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(c))}
}
