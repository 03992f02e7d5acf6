// Package server holds sluice's gRPC services: Data (Upsert, Get, Remove,
// Increment, GetRoutes, and the read side: GetMany, Scan, Watch) and Control (partitions, snapshots, operations), the
// interceptors (bearer token, rate limit, metrics, failure logs) and the one
// place where sluice's errors become gRPC codes (status.go).
//
//	s, health := server.NewGRPCServer(server.Port{Log: log, Metrics: registry})
//	server.RegisterData(s, &server.Data{Node: "n1", Table: table.Load, Local: local, Cluster: id, Changelog: log})
//	server.RegisterControl(s, &server.Control{Node: "n1", Cluster: node, Token: token})
package server
