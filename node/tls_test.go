package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sluicedb/sluice/client"
	"github.com/sluicedb/sluice/internal/tlsfiles"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/server"
)

// testPKI makes a CA and a certificate it signs for 127.0.0.1, usable by
// servers and clients, and writes them as PEM files in dir.
type testPKI struct{ ca, cert, key string }

func newPKI(t *testing.T, dir, name string) (testPKI, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	p := testPKI{ca: filepath.Join(dir, name+"-ca.pem"), cert: filepath.Join(dir, name+".pem"), key: filepath.Join(dir, name+"-key.pem")}
	os.WriteFile(p.ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600)
	os.WriteFile(p.cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(p.key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return p, ca, key
}

func (p testPKI) clientTLS(t *testing.T, withCert bool) *tls.Config {
	pool := x509.NewCertPool()
	b, _ := os.ReadFile(p.ca)
	pool.AppendCertsFromPEM(b)
	tc := &tls.Config{RootCAs: pool}
	if withCert {
		cert, err := tls.LoadX509KeyPair(p.cert, p.key)
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc
}

// Both ports on TLS, the control port with mutual TLS: TLS clients work,
// plaintext ones and control clients without a certificate do not, and the
// node's own calls to peers (ListPartitions asks each owner) go over mTLS.
func TestTLSAndMutualTLSOnControl(t *testing.T) {
	dir := t.TempDir()
	pki, _, _ := newPKI(t, dir, "node")
	n := startNode(t, pki.nodeTLS(t, false, true)) // its plaintext test connection stays unused
	ctx := context.Background()

	c, err := client.NewTLS(pki.clientTLS(t, false), n.DataAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Upsert(ctx, client.Entry{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatalf("data plane over TLS: %v", err)
	}
	plain, _ := grpc.NewClient(n.DataAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer plain.Close()
	shortCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := sluicev1.NewDataClient(plain).Get(shortCtx, &sluicev1.GetRequest{Key: []byte("k")}); err == nil {
		t.Fatal("a plaintext client was served on the TLS data port")
	}

	control := func(withCert bool) (*sluicev1.ListPartitionsResponse, error) {
		cc, err := grpc.NewClient(n.ControlAddr(), grpc.WithTransportCredentials(credentials.NewTLS(pki.clientTLS(t, withCert))),
			grpc.WithPerRPCCredentials(server.BearerToken("test-token")))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return sluicev1.NewControlClient(cc).ListPartitions(callCtx, &sluicev1.ListPartitionsRequest{})
	}
	if _, err := control(false); err == nil {
		t.Fatal("the control plane served a client without a certificate")
	}
	ls, err := control(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ls.Partitions {
		if p.State != "serving" {
			t.Fatalf("partition %d state %q: the node's mTLS call to itself failed", p.Id, p.State)
		}
	}
}

// nodeTLS makes a node's TLS configs from the PKI's files, as the CLI does:
// both ports on TLS with its certificate, client certificates required on
// the ports named, the CA to call peers with.
func (p testPKI) nodeTLS(t *testing.T, mutualData, mutualControl bool) Config {
	t.Helper()
	ca := func(on bool) string {
		if on {
			return p.ca
		}
		return ""
	}
	data, err := tlsfiles.Server(p.cert, p.key, ca(mutualData))
	if err != nil {
		t.Fatal(err)
	}
	control, err := tlsfiles.Server(p.cert, p.key, ca(mutualControl))
	if err != nil {
		t.Fatal(err)
	}
	peer, err := tlsfiles.Client(p.ca, p.cert, p.key)
	if err != nil {
		t.Fatal(err)
	}
	return Config{DataTLS: data, ControlTLS: control, PeerTLS: peer}
}
