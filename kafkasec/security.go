package kafkasec

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
)

// Security secures a node's connections to Kafka, for every Kafka client
// it makes. The zero value is plaintext without authentication.
//
//	kafkasec.Security{
//		TLS:  &tls.Config{RootCAs: pool},                                        // or nil: plaintext
//		SASL: scram.Auth{User: "sluice", Pass: pw}.AsSha512Mechanism(),          // or plain.Auth, oauth.Auth, nil
//	}
type Security struct {
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
func (s Security) Opts() []kgo.Opt {
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
func (s Security) String() string {
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

// Check refuses settings that would send a Kafka password or token in the
// clear: SASL PLAIN or OAUTHBEARER without TLS, unless AllowPlaintextSASL
// says that is meant (as Kafka's own clients refuse PLAIN over plaintext
// unless told).
func (s Security) Check() error {
	if s.SASL == nil || s.TLS != nil || s.AllowPlaintextSASL || !slices.Contains(clearTextMechanisms, s.SASL.Name()) {
		return nil
	}
	secret := "password"
	if s.SASL.Name() == "OAUTHBEARER" {
		secret = "token"
	}
	return fmt.Errorf("kafkasec: Kafka SASL %s without TLS sends the %s to the brokers in the clear: dial them over TLS (--kafka-tls, or kafka.tls in the config file), or, to send it in the clear on purpose, set --kafka-sasl-allow-plaintext",
		s.SASL.Name(), secret)
}
