package node

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// transport holds the node's TLS setup: what its two ports serve and how it
// calls its peers' control planes.
type transport struct {
	data, control *tls.Config // nil: plaintext
	peer          credentials.TransportCredentials
}

// transport builds the TLS configs from the files named in the config. With
// no certificate both ports are plaintext. With ControlClientCA (or
// DataClientCA) the control (or data) port requires client certificates it
// signed (mutual TLS); the node presents its own certificate when it calls a
// peer.
func (c *Config) transport() (transport, error) {
	if c.TLSCert == "" && c.TLSKey == "" {
		if c.ControlClientCA != "" {
			return transport{}, fmt.Errorf("node: --control-client-ca needs --tls-cert and --tls-key")
		}
		if c.DataClientCA != "" {
			return transport{}, fmt.Errorf("node: --data-client-ca needs --tls-cert and --tls-key")
		}
		return transport{peer: insecure.NewCredentials()}, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return transport{}, fmt.Errorf("node: TLS certificate: %w", err)
	}
	t := transport{
		data:    &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		control: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}
	if c.ControlClientCA != "" {
		pool, err := certPool(c.ControlClientCA)
		if err != nil {
			return transport{}, err
		}
		t.control.ClientCAs, t.control.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	if c.DataClientCA != "" {
		pool, err := certPool(c.DataClientCA)
		if err != nil {
			return transport{}, err
		}
		t.data.ClientCAs, t.data.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	peer := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.TLSCA != "" {
		if peer.RootCAs, err = certPool(c.TLSCA); err != nil {
			return transport{}, err
		}
	}
	t.peer = credentials.NewTLS(peer)
	return t, nil
}

func certPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("node: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("node: %s holds no PEM certificate", file)
	}
	return pool, nil
}
