package registry

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Every registry record is sealed: it carries, in two headers, the
// generation it was written at and an HMAC-SHA256 under the cluster key of
// the topic, its key, its value (or that it is a tombstone) and that
// generation. Writing to the registry topic is not enough to change the
// registry: whoever can produce to it (any client of an unauthenticated
// broker) but does not hold the cluster key writes records that every node
// skips and logs. Without the seal, one `kcat -P -k node/n1` re-announcing n1
// with another control address made the next control call send that address
// the cluster's control token, and a forged data address redirected clients.
//
// The seal wraps the encoding of every record (seal on Update's way out,
// open before apply), whatever its kind: a record kind added later is sealed
// with no more code.
//
// A sealed record replayed by someone who captured it is refused too: the
// generation is the registry offset the writer's view had reached (Update
// writes through one transactional id after catching up, so every update's
// generation is above every earlier update's), and a record whose generation
// is below the last one folded under its key is stale. A replay of the
// newest record of a key changes nothing. (A key whose tombstone compaction
// has dropped, after the topic's delete.retention.ms, is forgotten: an old
// record of it replayed after a node's restart would be taken. The embedded
// broker never compacts.)

const (
	macHeader = "sluice-mac"
	genHeader = "sluice-gen"
)

// ErrUnsealed: a record that is not sealed under the cluster key. It is
// skipped, and logged.
var ErrUnsealed = errors.New("registry: record not sealed under this cluster's key (forged, from another cluster, or written with another --registry-key-file)")

// DeriveKey turns a cluster secret (the control token every node shares)
// into a registry key, so that a cluster needs no second secret unless it
// wants one.
func DeriveKey(secret string) []byte {
	m := hmac.New(sha256.New, []byte("sluice registry key v1"))
	m.Write([]byte(secret))
	return m.Sum(nil)
}

// sealer seals and opens a topic's records under a key.
type sealer struct {
	key   []byte
	topic string
}

func (s sealer) mac(rec *kgo.Record, gen int64) []byte {
	m := hmac.New(sha256.New, s.key)
	var n [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		m.Write(n[:])
		m.Write(b)
	}
	field([]byte("sluice registry record v1"))
	field([]byte(s.topic))
	field(rec.Key)
	if rec.Value == nil {
		m.Write([]byte{0}) // a tombstone differs from an empty value
	} else {
		m.Write([]byte{1})
		field(rec.Value)
	}
	binary.BigEndian.PutUint64(n[:], uint64(gen))
	m.Write(n[:])
	return m.Sum(nil)
}

// seal makes the record of m, written at generation gen.
func (s sealer) seal(m Mutation, gen int64) *kgo.Record {
	rec := &kgo.Record{Key: []byte(m.Key), Value: m.Value}
	rec.Headers = []kgo.RecordHeader{
		{Key: genHeader, Value: []byte(strconv.FormatInt(gen, 10))},
		{Key: macHeader, Value: s.mac(rec, gen)},
	}
	return rec
}

// open checks rec's seal and returns its generation.
func (s sealer) open(rec *kgo.Record) (int64, error) {
	var gen, mac []byte
	genSeen, macSeen := 0, 0
	for _, h := range rec.Headers {
		switch h.Key {
		case genHeader:
			gen, genSeen = h.Value, genSeen+1
		case macHeader:
			mac, macSeen = h.Value, macSeen+1
		}
	}
	if genSeen != 1 || macSeen != 1 {
		return 0, ErrUnsealed
	}
	g, err := strconv.ParseInt(string(gen), 10, 64)
	if err != nil || g < 0 {
		return 0, ErrUnsealed
	}
	if !hmac.Equal(mac, s.mac(rec, g)) {
		return 0, ErrUnsealed
	}
	return g, nil
}

// staleError: a sealed record older than the one folded under its key, a
// replay.
type staleError struct {
	gen, last int64
}

func (e *staleError) Error() string {
	return fmt.Sprintf("registry: record written at generation %d, older than the key's last at %d (a replay)", e.gen, e.last)
}

// admit checks rec's seal and generation before fold applies it, and
// counts and logs a record it skips. Called with r.mu held.
func (r *Registry) admit(rec *kgo.Record) bool {
	log := r.cfg.Log.With().Str("key", string(rec.Key)).Int64("offset", rec.Offset).Str("topic", r.cfg.Topic).Logger()
	gen, err := r.seal.open(rec)
	switch {
	case err != nil && r.cfg.AdoptUnsealed && !r.sealed:
		r.adopted++
		log.Warn().Msg("registry: adopting a record written before sealing (--registry-adopt-unsealed)")
		return true
	case err != nil:
		r.errs++
		r.skipped++
		log.Error().Err(err).Msg("registry: ignoring a record that is not sealed under the cluster key: someone who can write to the topic but lacks the key wrote it")
		return false
	}
	if last, ok := r.gens[string(rec.Key)]; ok && gen < last {
		r.errs++
		log.Error().Err(&staleError{gen: gen, last: last}).Msg("registry: ignoring a sealed record older than its key's last: a replay")
		return false
	}
	r.gens[string(rec.Key)] = gen
	r.sealed = true
	return true
}

// Unsealed reports whether the view holds records that are not sealed
// (adopted, Config.AdoptUnsealed) with no sealed record after them, and
// whether unsealed records were skipped with no sealed one anywhere: a
// registry written by a sluice before sealing, which a node must not take
// for an empty one.
func (r *Registry) Unsealed() (adopted bool, skipped bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.adopted > 0 && !r.sealed, r.skipped > 0 && !r.sealed
}

// Reseal returns mutations that write every entry of v again, sealed: the
// records of a registry adopted from before sealing, made its own.
func (v *View) Reseal() []Mutation {
	var muts []Mutation
	for _, p := range v.Partitions {
		muts = append(muts, PutPartition(p))
	}
	for _, n := range v.Nodes {
		muts = append(muts, PutNode(n))
	}
	for id, w := range v.Writers {
		b, _ := json.Marshal(w)
		muts = append(muts, Mutation{Key: writerPrefix + id, Value: b})
	}
	for id, i := range v.Incarnations {
		b, _ := json.Marshal(i)
		muts = append(muts, Mutation{Key: incarnationPrefix + id, Value: b})
	}
	return append(muts,
		Mutation{Key: maxEpochKey, Value: []byte(strconv.FormatUint(v.MaxEpoch, 10))},
		Mutation{Key: maxIDKey, Value: []byte(strconv.FormatUint(uint64(v.MaxID), 10))})
}
