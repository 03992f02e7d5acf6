package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/spf13/pflag"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// tlsFlags are a client's TLS flags: the CA that signed the nodes'
// certificates and, for mutual TLS on the control plane, a client certificate.
type tlsFlags struct{ ca, cert, key string }

func (f *tlsFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.ca, "tls-ca", "", "PEM CA that signed the nodes' certificates: connect over TLS")
	fs.StringVar(&f.cert, "tls-cert", "", "PEM client certificate (nodes with --control-client-ca or --data-client-ca require one)")
	fs.StringVar(&f.key, "tls-key", "", "PEM key of --tls-cert")
}

// config returns nil for plaintext (no TLS flag given).
func (f *tlsFlags) config() (*tls.Config, error) {
	if f.ca == "" && f.cert == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.ca != "" {
		b, err := os.ReadFile(f.ca)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("%s holds no PEM certificate", f.ca)
		}
	}
	if f.cert != "" {
		cert, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (f *tlsFlags) creds() (credentials.TransportCredentials, error) {
	tc, err := f.config()
	if err != nil || tc == nil {
		return insecure.NewCredentials(), err
	}
	return credentials.NewTLS(tc), nil
}
