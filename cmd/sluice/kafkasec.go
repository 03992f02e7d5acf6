package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"gopkg.in/yaml.v3"

	"github.com/sluicedb/sluice/kafkasec"
)

// kafkaSecurity is how sluice reaches a Kafka that requires TLS or SASL, as
// the `kafka:` section of the config file and as flags (which win). Secrets
// come from files or the environment, never from the command line, which
// other users of the host can read.
//
//	kafka:
//	  tls: {ca: /etc/sluice/kafka-ca.pem, cert: client.pem, key: client-key.pem, server_name: kafka.internal}
//	  sasl: {mechanism: SCRAM-SHA-512, user: sluice, password_file: /run/secrets/kafka-password}
type kafkaSecurity struct {
	TLS struct {
		// Enabled dials over TLS with the system roots when no CA is named.
		Enabled    bool   `yaml:"enabled"`
		CA         string `yaml:"ca"`
		Cert       string `yaml:"cert"`
		Key        string `yaml:"key"`
		ServerName string `yaml:"server_name"`
	} `yaml:"tls"`
	SASL struct {
		// Mechanism is PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER.
		Mechanism    string `yaml:"mechanism"`
		User         string `yaml:"user"`
		Password     string `yaml:"password"`
		PasswordFile string `yaml:"password_file"`
		// Token is a static OAUTHBEARER token; TokenFile is read again at
		// every new connection, so a token that a sidecar refreshes is used.
		Token     string `yaml:"token"`
		TokenFile string `yaml:"token_file"`
		// AllowPlaintext lets PLAIN and OAUTHBEARER run without TLS, sending
		// the secret in the clear; refused otherwise.
		AllowPlaintext bool `yaml:"allow_plaintext"`
	} `yaml:"sasl"`
}

// register adds the Kafka security flags; they override the config file.
func (k *kafkaSecurity) register(fs *pflag.FlagSet) {
	fs.BoolVar(&k.TLS.Enabled, "kafka-tls", false, "dial Kafka over TLS (implied by --kafka-tls-ca/--kafka-tls-cert)")
	fs.StringVar(&k.TLS.CA, "kafka-tls-ca", "", "PEM CA that signed the brokers' certificates (default: system roots)")
	fs.StringVar(&k.TLS.Cert, "kafka-tls-cert", "", "PEM client certificate presented to Kafka (mutual TLS)")
	fs.StringVar(&k.TLS.Key, "kafka-tls-key", "", "PEM key of --kafka-tls-cert")
	fs.StringVar(&k.TLS.ServerName, "kafka-tls-server-name", "", "name the brokers' certificates are checked against (default: each broker's host)")
	fs.StringVar(&k.SASL.Mechanism, "kafka-sasl-mechanism", "", "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER")
	fs.StringVar(&k.SASL.User, "kafka-sasl-user", "", "SASL user (PLAIN, SCRAM)")
	fs.StringVar(&k.SASL.PasswordFile, "kafka-sasl-password-file", "", "file holding the SASL password ($SLUICE_KAFKA_PASSWORD also works)")
	fs.StringVar(&k.SASL.TokenFile, "kafka-sasl-token-file", "", "file holding the OAUTHBEARER token, read at every new connection ($SLUICE_KAFKA_TOKEN: a static one)")
	fs.BoolVar(&k.SASL.AllowPlaintext, "kafka-sasl-allow-plaintext", false, "let PLAIN and OAUTHBEARER run without --kafka-tls, sending the password or token in the clear (refused otherwise)")
}

// loadKafkaSecurity reads the `kafka:` section of a config file (unknown
// fields are refused) under the flags already parsed into over: a flag set
// there wins.
func loadKafkaSecurity(path string, over kafkaSecurity) (kafkaSecurity, error) {
	if path == "" {
		return over, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return over, err
	}
	var file struct {
		Kafka yaml.Node `yaml:"kafka"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		return over, fmt.Errorf("config %s: %v", path, err)
	}
	var k kafkaSecurity
	if !file.Kafka.IsZero() {
		// Re-encode the section alone so KnownFields can refuse a typo.
		raw, err := yaml.Marshal(&file.Kafka)
		if err != nil {
			return over, err
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&k); err != nil {
			return over, fmt.Errorf("config %s: kafka (line %d): %v", path, file.Kafka.Line, err)
		}
	}
	pick := func(flag, file string) string {
		if flag != "" {
			return flag
		}
		return file
	}
	k.TLS.Enabled = k.TLS.Enabled || over.TLS.Enabled
	k.TLS.CA, k.TLS.Cert, k.TLS.Key = pick(over.TLS.CA, k.TLS.CA), pick(over.TLS.Cert, k.TLS.Cert), pick(over.TLS.Key, k.TLS.Key)
	k.TLS.ServerName = pick(over.TLS.ServerName, k.TLS.ServerName)
	k.SASL.Mechanism, k.SASL.User = pick(over.SASL.Mechanism, k.SASL.Mechanism), pick(over.SASL.User, k.SASL.User)
	k.SASL.PasswordFile, k.SASL.TokenFile = pick(over.SASL.PasswordFile, k.SASL.PasswordFile), pick(over.SASL.TokenFile, k.SASL.TokenFile)
	k.SASL.AllowPlaintext = k.SASL.AllowPlaintext || over.SASL.AllowPlaintext
	return k, nil
}

// build turns file names and settings into the node's kafkasec.Security.
func (k kafkaSecurity) build() (kafkasec.Security, error) {
	var s kafkasec.Security
	t := k.TLS
	if t.Enabled || t.CA != "" || t.Cert != "" || t.Key != "" || t.ServerName != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
		if t.CA != "" {
			pem, err := os.ReadFile(t.CA)
			if err != nil {
				return s, fmt.Errorf("kafka TLS CA: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return s, fmt.Errorf("kafka TLS CA: %s holds no PEM certificate", t.CA)
			}
		}
		if (t.Cert == "") != (t.Key == "") {
			return s, fmt.Errorf("kafka TLS: a client certificate needs both --kafka-tls-cert and --kafka-tls-key")
		}
		if t.Cert != "" {
			cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
			if err != nil {
				return s, fmt.Errorf("kafka TLS client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		s.TLS = tc
	}
	var err error
	if s.SASL, err = k.mechanism(); err != nil {
		return s, err
	}
	s.AllowPlaintextSASL = k.SASL.AllowPlaintext
	return s, s.Check() // at start, for every command that reaches Kafka
}

func (k kafkaSecurity) mechanism() (sasl.Mechanism, error) {
	a := k.SASL
	mech := strings.ToUpper(strings.TrimSpace(a.Mechanism))
	if mech == "" {
		if a.User != "" || a.Password != "" || a.PasswordFile != "" || a.Token != "" || a.TokenFile != "" {
			return nil, fmt.Errorf("kafka SASL: credentials given but no mechanism (--kafka-sasl-mechanism)")
		}
		return nil, nil
	}
	if mech == "OAUTHBEARER" {
		token := firstNonEmpty(os.Getenv("SLUICE_KAFKA_TOKEN"), a.Token)
		switch {
		case a.TokenFile != "":
			if _, err := readSecret(a.TokenFile); err != nil { // fail at start, not at the first connection
				return nil, fmt.Errorf("kafka SASL token: %w", err)
			}
			return oauth.Oauth(func(context.Context) (oauth.Auth, error) {
				tok, err := readSecret(a.TokenFile)
				return oauth.Auth{Token: tok}, err
			}), nil
		case token != "":
			return oauth.Auth{Token: token}.AsMechanism(), nil
		}
		return nil, fmt.Errorf("kafka SASL OAUTHBEARER needs a token (--kafka-sasl-token-file, $SLUICE_KAFKA_TOKEN or sasl.token)")
	}
	password := firstNonEmpty(os.Getenv("SLUICE_KAFKA_PASSWORD"), a.Password)
	if a.PasswordFile != "" {
		var err error
		if password, err = readSecret(a.PasswordFile); err != nil {
			return nil, fmt.Errorf("kafka SASL password: %w", err)
		}
	}
	if a.User == "" || password == "" {
		return nil, fmt.Errorf("kafka SASL %s needs a user (--kafka-sasl-user) and a password (--kafka-sasl-password-file or $SLUICE_KAFKA_PASSWORD)", mech)
	}
	switch mech {
	case "PLAIN":
		return plain.Auth{User: a.User, Pass: password}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: a.User, Pass: password}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: a.User, Pass: password}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("kafka SASL mechanism %q is none of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER", a.Mechanism)
}

// readSecret reads a password or token file, without its surrounding space.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
