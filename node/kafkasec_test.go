package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sluicedb/sluice/client"
	"github.com/sluicedb/sluice/internal/kafkalocal"
	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/kafkasec"
	"github.com/sluicedb/sluice/topics"
)

// kafkaPKI is a CA, a broker certificate for 127.0.0.1 and a client
// certificate for CN=alice, in PEM.
type kafkaPKI struct {
	ca                *x509.CertPool
	caPEM             []byte
	brokerPEM, keyPEM []byte // keyPEM: PKCS#8, as Kafka's PEM keystore wants
	client            tls.Certificate
}

func newKafkaPKI(t *testing.T) kafkaPKI {
	t.Helper()
	issue := func(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, []byte, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := x509.ParseCertificate(der)
		return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key
	}
	ca, caPEM, caKey := issue(&x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kafka test CA"},
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}, nil, nil)
	_, brokerPEM, brokerKey := issue(&x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}, ca, caKey)
	_, clientPEM, clientKey := issue(&x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "alice"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, caKey)
	pkcs8 := func(k *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	client, err := tls.X509KeyPair(clientPEM, pkcs8(clientKey))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return kafkaPKI{ca: pool, caPEM: caPEM, brokerPEM: append(brokerPEM, caPEM...), keyPEM: pkcs8(brokerKey), client: client}
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// grantSluice creates the ACLs the README's "Kafka ACLs" section tells an
// operator to grant a sluice node's principal for one cluster, and no more
// (Read and Write imply Describe; none of Describe, IdempotentWrite or a
// group is needed).
func grantSluice(t *testing.T, adm *kadm.Client, principal, cluster string) {
	t.Helper()
	grantSluiceTopics(t, adm, principal, cluster, kadm.OpCreate, kadm.OpRead, kadm.OpWrite, kadm.OpDescribeConfigs)
}

// grantSluiceTopics is grantSluice with topicOps on the cluster's topics.
func grantSluiceTopics(t *testing.T, adm *kadm.Client, principal, cluster string, topicOps ...kadm.ACLOperation) {
	t.Helper()
	tp := topics.Names{Cluster: cluster}
	ctx := context.Background()
	for _, b := range []*kadm.ACLBuilder{
		kadm.NewACLs().Allow(principal).AllowHosts().
			Topics(tp.Changelog(), tp.Ingest(), tp.DLQ(), tp.Registry()).ResourcePatternType(kadm.ACLPatternLiteral).
			Operations(topicOps...),
		kadm.NewACLs().Allow(principal).AllowHosts().
			TransactionalIDs(cluster + ".").ResourcePatternType(kadm.ACLPatternPrefixed).
			Operations(kadm.OpWrite),
	} {
		res, err := adm.CreateACLs(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("ACL %s %v on %s: %v %s", r.Principal, r.Operation, r.Name, r.Err, r.ErrMessage)
			}
		}
	}
}

// unsecuredJWT is a token Kafka's default OAUTHBEARER validator accepts: an
// unsigned JWT naming the principal in "sub" (for tests only).
func unsecuredJWT(sub string) string {
	enc := base64.RawURLEncoding.EncodeToString
	now := time.Now().Unix()
	return enc([]byte(`{"alg":"none"}`)) + "." + enc(fmt.Appendf(nil, `{"sub":%q,"iat":%d,"exp":%d}`, sub, now, now+3600)) + "."
}

// A node reaches a Kafka that requires SASL/SCRAM or TLS client
// certificates, with a principal that holds only the ACLs the README lists,
// and serves writes and ingest; wrong credentials, an untrusted broker and
// missing ACLs each fail the start with an error that names the cause.
func TestKafkaSecurity(t *testing.T) {
	kafkatest.Brokers(t) // the shared broker's Java and jars are this one's too
	pki := newKafkaPKI(t)
	ports := freePorts(t, 5)
	b, err := kafkalocal.Start(context.Background(), kafkalocal.Config{Dir: t.TempDir(), Port: ports[0], ControllerPort: ports[1],
		Security: &kafkalocal.Security{SASLPort: ports[2], TLSPort: ports[3], SASLTLSPort: ports[4],
			Users:   map[string]string{"alice": "alice-secret"},
			CertPEM: pki.brokerPEM, KeyPEM: pki.keyPEM, ClientCAPEM: pki.caPEM, Authorizer: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	admin, err := kgo.NewClient(kgo.SeedBrokers(b.Addr)) // ANONYMOUS on PLAINTEXT: a super user
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	granted := kafkatest.ClusterName(t)
	grantSluice(t, adm, "User:alice", granted)
	grantSluice(t, adm, "User:alice", granted+"-tls")

	scram256 := scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism()
	mutualTLS := &tls.Config{RootCAs: pki.ca, Certificates: []tls.Certificate{pki.client}}

	serves := func(t *testing.T, brokers string, sec kafkasec.Security, cluster string) {
		n := startNode(t, Config{Brokers: []string{brokers}, Kafka: sec, Cluster: cluster})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		c, _ := client.New(n.DataAddr())
		defer c.Close()
		key := []byte("written-over-" + sec.String())
		if _, err := c.Upsert(ctx, client.Entry{Key: key, Value: []byte("v")}); err != nil {
			t.Fatalf("upsert: %v", err)
		}
		if v, found, err := c.Get(ctx, key); err != nil || !found || string(v.Data) != "v" {
			t.Fatalf("get: %q %v %v", v.Data, found, err)
		}
		// Ingest: a record produced to the ingest topic is consumed and applied.
		if err := admin.ProduceSync(ctx, &kgo.Record{Topic: topics.Names{Cluster: cluster}.Ingest(), Key: []byte("ingested"), Value: []byte("i"),
			Partition: -1}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		for {
			v, found, err := c.Get(ctx, []byte("ingested"))
			if err == nil && found && string(v.Data) == "i" {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("the ingest record was never applied: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Run("SCRAM-SHA-256", func(t *testing.T) { serves(t, b.SASLAddr, kafkasec.Security{SASL: scram256}, granted) })
	// Topics an operator created beforehand: sluice describes them and
	// creates nothing, so it needs no Create ACL.
	precreated := granted + "-pre"
	if _, err := topics.EnsureAll(context.Background(), admin, topics.Names{Cluster: precreated}, 16, 1); err != nil {
		t.Fatal(err)
	}
	grantSluiceTopics(t, adm, "User:alice", precreated, kadm.OpRead, kadm.OpWrite, kadm.OpDescribeConfigs)
	t.Run("topics created beforehand, no Create ACL", func(t *testing.T) { serves(t, b.SASLAddr, kafkasec.Security{SASL: scram256}, precreated) })
	t.Run("TLS with a client certificate", func(t *testing.T) { serves(t, b.TLSAddr, kafkasec.Security{TLS: mutualTLS}, granted+"-tls") })

	// Every mechanism authenticates as alice over SASL_SSL.
	for _, sec := range []kafkasec.Security{
		{TLS: &tls.Config{RootCAs: pki.ca}, SASL: scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism()},
		{TLS: &tls.Config{RootCAs: pki.ca}, SASL: plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism()},
		{TLS: &tls.Config{RootCAs: pki.ca}, SASL: oauth.Auth{Token: unsecuredJWT("alice")}.AsMechanism()},
	} {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.SASLTLSAddr)}, sec.Opts()...)...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err = kadm.NewClient(cl).ListEndOffsets(ctx, topics.Names{Cluster: granted}.Changelog())
		cancel()
		cl.Close()
		if err != nil {
			t.Errorf("%s over SASL_SSL: %v", sec, err)
		}
	}

	refused := []struct {
		name, brokers string
		sec           kafkasec.Security
		cluster, want string
	}{
		{"wrong password", b.SASLAddr, kafkasec.Security{SASL: scram.Auth{User: "alice", Pass: "wrong"}.AsSha256Mechanism()}, granted, "refused sluice's SASL credentials (SASL SCRAM-SHA-256)"},
		{"untrusted broker", b.TLSAddr, kafkasec.Security{TLS: &tls.Config{Certificates: mutualTLS.Certificates}}, granted, "is not trusted"},
		{"no ACLs", b.SASLAddr, kafkasec.Security{SASL: scram256}, "ungranted-" + granted, "grant its principal the ACLs in the README"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			n, err := Start(ctx, Config{Brokers: []string{tc.brokers}, Kafka: tc.sec, Cluster: tc.cluster, DataDir: t.TempDir(),
				DataAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", HTTPAddr: "-", ControlToken: "t",
				Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
			if err == nil {
				n.Close()
				t.Fatal("the node started")
			}
			if !strings.Contains(err.Error(), tc.want) || ctx.Err() != nil {
				t.Fatalf("start: %v (deadline: %v); want an error containing %q", err, ctx.Err(), tc.want)
			}
		})
	}
}

// SASL PLAIN and OAUTHBEARER without TLS would send the password or token
// in the clear: the start refuses, naming both ways out, before it dials
// Kafka; said on purpose, it is allowed. SCRAM sends no secret and passes.
func TestKafkaSASLInTheClearIsRefused(t *testing.T) {
	refused := []kafkasec.Security{
		{SASL: plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism()},
		{SASL: oauth.Auth{Token: unsecuredJWT("alice")}.AsMechanism()},
	}
	for _, sec := range refused {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		// Nothing listens on the broker's port: a start that dials fails
		// there, with another error.
		n, err := Start(ctx, Config{Brokers: []string{"127.0.0.1:1"}, Kafka: sec, Cluster: "cleartext", DataDir: t.TempDir(),
			DataAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", HTTPAddr: "-", ControlToken: "t",
			Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
		cancel()
		if err == nil {
			n.Close()
			t.Fatalf("%s: the node started", sec)
		}
		for _, want := range []string{"in the clear", "--kafka-tls", "--kafka-sasl-allow-plaintext"} {
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("%s: start: %v; want an error containing %q", sec, err, want)
			}
		}
	}
}
