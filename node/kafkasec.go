package node

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
)

// KafkaSecurity secures a node's connections to Kafka, for every Kafka client
// it makes. The zero value is plaintext without authentication.
//
//	node.KafkaSecurity{
//		TLS:  &tls.Config{RootCAs: pool},                                        // or nil: plaintext
//		SASL: scram.Auth{User: "sluice", Pass: pw}.AsSha512Mechanism(),          // or plain.Auth, oauth.Auth, nil
//	}
type KafkaSecurity struct {
	// TLS, if set, dials every broker over TLS with this config: RootCAs (nil:
	// the system roots), a client certificate, ServerName (empty: the
	// broker's host name).
	TLS *tls.Config
	// SASL, if set, authenticates every connection: a mechanism from
	// franz-go's pkg/sasl/plain, scram or oauth.
	SASL sasl.Mechanism
	// AllowPlaintextSASL lets PLAIN and OAUTHBEARER run without TLS, which
	// sends the password or token to the brokers as it is
	// (--kafka-sasl-allow-plaintext). Default false: that is refused.
	AllowPlaintextSASL bool
}

// clearTextMechanisms are the SASL mechanisms that send the secret itself
// over the connection (SCRAM sends a proof of it).
var clearTextMechanisms = []string{"PLAIN", "OAUTHBEARER"}

// Opts are the franz-go options that apply s; the node adds them to every
// client, and cmd/sluice to its own (bench -w ingest).
func (s KafkaSecurity) Opts() []kgo.Opt {
	var opts []kgo.Opt
	if s.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(s.TLS.Clone()))
	}
	if s.SASL != nil {
		opts = append(opts, kgo.SASL(s.SASL))
	}
	return opts
}

// String describes s without secrets: "TLS, SASL SCRAM-SHA-512".
func (s KafkaSecurity) String() string {
	var parts []string
	if s.TLS != nil {
		parts = append(parts, "TLS")
	}
	if s.SASL != nil {
		parts = append(parts, "SASL "+s.SASL.Name())
		if s.TLS == nil && s.AllowPlaintextSASL {
			parts = append(parts, "credentials in the clear")
		}
	}
	if len(parts) == 0 {
		return "plaintext, no authentication"
	}
	return strings.Join(parts, ", ")
}

func (s KafkaSecurity) check(hasBrokers bool) error {
	if !hasBrokers && (s.TLS != nil || s.SASL != nil) {
		return errors.New("node: Kafka TLS and SASL settings need brokers (--brokers): the embedded broker takes neither")
	}
	return s.Check()
}

// Check refuses settings that would send a Kafka password or token in the
// clear: SASL PLAIN or OAUTHBEARER without TLS, unless AllowPlaintextSASL
// says that is meant (as Kafka's own clients refuse PLAIN over plaintext
// unless told).
func (s KafkaSecurity) Check() error {
	if s.SASL == nil || s.TLS != nil || s.AllowPlaintextSASL || !slices.Contains(clearTextMechanisms, s.SASL.Name()) {
		return nil
	}
	secret := "password"
	if s.SASL.Name() == "OAUTHBEARER" {
		secret = "token"
	}
	return fmt.Errorf("node: Kafka SASL %s without TLS sends the %s to the brokers in the clear: dial them over TLS (--kafka-tls, or kafka.tls in the config file), or, to send it in the clear on purpose, set --kafka-sasl-allow-plaintext",
		s.SASL.Name(), secret)
}

// explain turns the errors of a first contact with Kafka that a setting
// causes into ones that name the setting.
func (s KafkaSecurity) explain(brokers []string, err error) error {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		verify    *tls.CertificateVerificationError
		notTLS    tls.RecordHeaderError
	)
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return fmt.Errorf("node: Kafka at %s refused sluice's SASL credentials (%s): check the user and password or token: %w", strings.Join(brokers, ","), s, err)
	case errors.Is(err, kerr.UnsupportedSaslMechanism), errors.Is(err, kerr.IllegalSaslState):
		return fmt.Errorf("node: Kafka at %s does not offer the SASL mechanism sluice uses (%s) on this listener: %w", strings.Join(brokers, ","), s, err)
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &verify):
		return fmt.Errorf("node: the TLS certificate of Kafka at %s is not trusted (set the Kafka TLS CA, or the server name it was issued for): %w", strings.Join(brokers, ","), err)
	case errors.As(err, &notTLS):
		return fmt.Errorf("node: Kafka at %s did not answer TLS: is that listener plaintext?: %w", strings.Join(brokers, ","), err)
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed),
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed), errors.Is(err, kerr.GroupAuthorizationFailed):
		return fmt.Errorf("node: Kafka at %s denied sluice an operation: grant its principal the ACLs in the README (\"Kafka ACLs\"): %w", strings.Join(brokers, ","), err)
	}
	return err
}
