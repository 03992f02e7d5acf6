// Package resp serves sluice's data plane over the Redis protocol (RESP2,
// and RESP3 after HELLO 3), on redcon: GET, MGET, EXISTS, SET (EX, PX, NX,
// XX), DEL, INCR, INCRBY, DECR, DECRBY, SCAN (MATCH prefix*, COUNT), PING,
// ECHO, HELLO, AUTH, CLIENT ID/SETNAME/GETNAME/SETINFO, SELECT 0, QUIT and
// SLUICE.CONSISTENCY (the connection's read level: linearizable, the
// default, session or eventual).
//
// A command runs the node's own data-plane methods (server.Data) in this
// process: validation, limits, sessions and consistency are the gRPC
// port's, and so are its error messages. A key this node does not serve is
// forwarded to its owner through the Go client, so a plain Redis client
// works against any node; there are no CLUSTER commands (sluice's slots are
// not Redis Cluster's hash slots).
//
// Memory per connection is bounded (wire.go): a command is refused at its
// header once it cannot fit in MaxCommandBytes, or, before AUTH, in Redis's
// limits before AUTH; redcon's input buffer empties at least every 1 MiB of
// a pipeline; and replies are written as soon as 64 KiB of them wait, so a
// client that pipelines without reading blocks on TCP's window rather than
// growing the node's buffers. The framing and inline commands are read as
// Redis reads them (empty arrays ignored, strict lengths, sdssplitargs).
package resp
