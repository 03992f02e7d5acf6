// Package tlsfiles turns PEM files named on a command line into *tls.Config
// values, which is all the library packages take.
//
//	data, err := tlsfiles.Server("node.pem", "node-key.pem", "clients-ca.pem") // mutual TLS
//	peer, err := tlsfiles.Client("ca.pem", "node.pem", "node-key.pem")
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// Server is a server's config: its certificate and key and, with clientCA,
// client certificates signed by that CA required (mutual TLS).
func Server(certFile, keyFile, clientCA string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		if tc.ClientCAs, err = Pool(clientCA); err != nil {
			return nil, err
		}
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// Client is a client's config: the CA that signed the servers' certificates
// (the system's roots if ""), and a certificate to present if certFile is set.
func Client(ca, certFile, keyFile string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	var err error
	if ca != "" {
		if tc.RootCAs, err = Pool(ca); err != nil {
			return nil, err
		}
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Pool reads the PEM certificates of file.
func Pool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}
