// Package kafkasec is how sluice secures its connections to Kafka: TLS and
// SASL settings (Security), turned into the franz-go options every client
// takes (Opts), described without secrets (String), and refused where they
// would send a password or token in the clear (Check). The node adds the
// options to every Kafka client it makes; cmd/sluice reads the settings from
// flags and the config file.
package kafkasec
