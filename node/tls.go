package node

import (
	"crypto/tls"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// transport holds the node's TLS setup: what its two ports serve and how it
// calls its peers' control planes.
type transport struct {
	data, control *tls.Config // nil: plaintext
	peer          credentials.TransportCredentials
}

func (c *Config) transport() transport {
	t := transport{data: c.DataTLS, control: c.ControlTLS, peer: insecure.NewCredentials()}
	if c.PeerTLS != nil {
		t.peer = credentials.NewTLS(c.PeerTLS)
	}
	return t
}

// mutual reports a TLS config that requires client certificates.
func mutual(tc *tls.Config) bool { return tc != nil && tc.ClientAuth == tls.RequireAndVerifyClientCert }
