package resp

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"math"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// command is one command the endpoint serves.
type command struct {
	// arity is Redis's: n, exactly n arguments with the name; -n, at
	// least n.
	arity int
	// open: served before AUTH.
	open bool
	run  func(c *conn, args [][]byte)
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"get":                {2, false, (*conn).cmdGet},
		"mget":               {-2, false, (*conn).cmdMGet},
		"exists":             {-2, false, (*conn).cmdExists},
		"set":                {-3, false, (*conn).cmdSet},
		"del":                {-2, false, (*conn).cmdDel},
		"incr":               {2, false, func(c *conn, a [][]byte) { c.increment(a[1], 1) }},
		"decr":               {2, false, func(c *conn, a [][]byte) { c.increment(a[1], -1) }},
		"incrby":             {3, false, func(c *conn, a [][]byte) { c.cmdIncrBy(a, false) }},
		"decrby":             {3, false, func(c *conn, a [][]byte) { c.cmdIncrBy(a, true) }},
		"scan":               {-2, false, (*conn).cmdScan},
		"ping":               {-1, false, (*conn).cmdPing},
		"echo":               {2, false, func(c *conn, a [][]byte) { c.bulk(a[1]) }},
		"hello":              {-1, true, (*conn).cmdHello},
		"auth":               {-2, true, (*conn).cmdAuth},
		"client":             {-2, false, (*conn).cmdClient},
		"select":             {2, false, (*conn).cmdSelect},
		"quit":               {-1, true, (*conn).cmdQuit},
		"sluice.consistency": {-1, false, (*conn).cmdConsistency},
		"cluster":            {-1, false, (*conn).cmdCluster},
	}
}

// dispatch runs one command, checking it as Redis does: a known name, then
// its arity, then authentication.
func (c *conn) dispatch(args [][]byte) {
	var buf [24]byte // the name in lower case: no allocation
	name := args[0]
	cmd, ok := command{}, false
	if len(name) <= len(buf) {
		n := copy(buf[:], name)
		for i := range n {
			if b := buf[i]; b >= 'A' && b <= 'Z' {
				buf[i] = b + 'a' - 'A'
			}
		}
		cmd, ok = commands[string(buf[:n])]
	}
	switch {
	case !ok:
		c.unknown(args)
	case (cmd.arity > 0 && len(args) != cmd.arity) || (cmd.arity < 0 && len(args) < -cmd.arity):
		c.errorf("ERR wrong number of arguments for '%s' command", commandName(args))
	case !c.authed && !cmd.open:
		c.errorf("NOAUTH Authentication required.")
	default:
		cmd.run(c, args)
	}
}

// unknown answers a command sluice does not serve, as Redis does.
func (c *conn) unknown(args [][]byte) {
	var b strings.Builder
	b.WriteString("ERR unknown command '")
	b.WriteString(printable(args[0]))
	b.WriteString("', with args beginning with: ")
	for _, a := range args[1:min(len(args), 4)] {
		b.WriteString("'")
		b.WriteString(printable(a))
		b.WriteString("' ")
	}
	c.errorf("%s", b.String())
}

// printable is an argument as an error may quote it: at most 64 bytes,
// control characters as '?'.
func printable(b []byte) string {
	s := []byte(string(b[:min(len(b), 64)]))
	for i, ch := range s {
		if ch < ' ' || ch == 0x7f {
			s[i] = '?'
		}
	}
	if len(b) > 64 {
		return string(s) + "..."
	}
	return string(s)
}

func commandName(args [][]byte) string {
	if len(args) == 0 {
		return ""
	}
	return strings.ToLower(printable(args[0]))
}

func (c *conn) syntaxError() { c.errorf("ERR syntax error") }

// reply answers a data-plane error: the gRPC port's message, under the
// prefix a Redis client knows (errorPrefix).
// reply answers a command that writes (or may have) with its error.
func (c *conn) reply(err error) {
	prefix, msg := errorPrefix(err, true)
	c.errorf("%s %s", prefix, msg)
}

// replyRead answers a read with its error.
func (c *conn) replyRead(err error) {
	prefix, msg := errorPrefix(err, false)
	c.errorf("%s %s", prefix, msg)
}

func (c *conn) cmdGet(args [][]byte) {
	c.value(c.readOne(args[1]))
}

// value answers one key's read: its value, nil if absent, or the error.
func (c *conn) value(v []byte, found bool, err error) {
	switch {
	case err != nil:
		c.replyRead(err)
	case !found:
		c.null()
	default:
		c.bulk(v)
	}
}

func (c *conn) cmdMGet(args [][]byte) {
	keys := args[1:]
	started := false
	err := c.readMany(keys, func(v []byte, found bool, err error) {
		if !started {
			started = true
			c.array(len(keys))
		}
		c.value(v, found, err)
	})
	if err != nil {
		c.replyRead(err)
	}
}

func (c *conn) cmdExists(args [][]byte) {
	n := int64(0)
	var failed error
	err := c.readMany(args[1:], func(_ []byte, found bool, err error) {
		if err != nil && failed == nil {
			failed = err
		}
		if found {
			n++
		}
	})
	switch {
	case err != nil:
		c.replyRead(err)
	case failed != nil:
		c.replyRead(failed)
	default:
		c.integer(n)
	}
}

// cmdSet is SET key value [EX seconds | PX milliseconds] [NX | XX].
func (c *conn) cmdSet(args [][]byte) {
	e, nx, xx, bad := parseSet(args)
	if bad != "" {
		c.errorf("%s", bad)
		return
	}
	if xx {
		c.setIfExists(e)
		return
	}
	if nx {
		e.ExpectedVersion = new(uint64) // 0: the key must not exist
	}
	switch err := c.upsert(e); {
	case nx && status.Code(err) == codes.Aborted:
		c.null() // the key exists: not set
	case err != nil:
		c.reply(err)
	default:
		c.ok()
	}
}

// parseSet reads SET's arguments: the entry, its condition, or the error
// that answers them.
func parseSet(args [][]byte) (e *sluicev1.Entry, nx, xx bool, bad string) {
	e = &sluicev1.Entry{Key: args[1], Value: args[2]}
	var expiry bool
	for i := 3; i < len(args); i++ {
		switch opt := strings.ToUpper(string(args[i])); opt {
		case "NX", "XX":
			if nx || xx {
				return nil, false, false, "ERR syntax error"
			}
			nx, xx = opt == "NX", opt == "XX"
		case "EX", "PX":
			if expiry || i+1 == len(args) {
				return nil, false, false, "ERR syntax error"
			}
			expiry = true
			i++
			n, ok := parseInteger(args[i])
			if !ok {
				return nil, false, false, "ERR value is not an integer or out of range"
			}
			if n <= 0 {
				return nil, false, false, "ERR invalid expire time in 'set' command"
			}
			secs := n
			if opt == "PX" {
				if n%1000 != 0 {
					return nil, false, false, fmt.Sprintf("ERR sluice expires keys in whole seconds: PX %d is not a whole number of seconds (use EX, or PX in thousands)", n)
				}
				secs = n / 1000
			}
			if secs > math.MaxUint32 {
				return nil, false, false, fmt.Sprintf("ERR invalid expire time in 'set' command (sluice takes at most %d seconds)", uint32(math.MaxUint32))
			}
			e.TtlSeconds = uint32(secs)
		case "KEEPTTL", "GET", "EXAT", "PXAT":
			return nil, false, false, fmt.Sprintf("ERR sluice does not serve SET's %s option (it serves EX, PX, NX and XX)", opt)
		default:
			return nil, false, false, "ERR syntax error"
		}
	}
	return e, nx, xx, ""
}

// setIfExists is SET ... XX: a compare-and-set on the version the key has,
// asked again when another write came between (the key still exists).
func (c *conn) setIfExists(e *sluicev1.Entry) {
	for range 16 {
		version, found, err := c.version(e.Key)
		switch {
		case err != nil:
			c.replyRead(err) // nothing was written
			return
		case !found:
			c.null()
			return
		}
		e.ExpectedVersion = &version
		switch err := c.upsert(e); {
		case status.Code(err) == codes.Aborted:
			continue // written meanwhile: read its version again
		case err != nil:
			c.reply(err)
		default:
			c.ok()
		}
		return
	}
	c.errorf("ERR sluice: SET XX lost the race for %q to other writers 16 times; nothing was written, try again", printable(e.Key))
}

func (c *conn) cmdDel(args [][]byte) {
	keys := args[1:]
	if err := c.validateKeys(keys); err != nil {
		c.reply(err)
		return
	}
	n := int64(0)
	for i, key := range keys {
		existed, err := c.remove(key)
		if err != nil {
			if i > 0 {
				prefix, msg := errorPrefix(err, true)
				c.errorf("%s sluice: removed %d of the first %d keys, then key %d failed (the keys after it were not removed): %s", prefix, n, i, i, msg)
				return
			}
			c.reply(err)
			return
		}
		if existed {
			n++
		}
	}
	c.integer(n)
}

func (c *conn) cmdIncrBy(args [][]byte, negate bool) {
	delta, ok := parseInteger(args[2])
	if !ok {
		c.errorf("ERR value is not an integer or out of range")
		return
	}
	if negate {
		if delta == math.MinInt64 {
			c.errorf("ERR decrement would overflow")
			return
		}
		delta = -delta
	}
	c.increment(args[1], delta)
}

func (c *conn) increment(key []byte, delta int64) {
	n, err := c.incr(key, delta)
	switch {
	case err == nil:
		c.integer(n)
	case status.Code(err) == codes.FailedPrecondition && !isBadNode(err):
		c.errorf("ERR value is not an integer or out of range (%s)", status.Convert(err).Message())
	default:
		c.reply(err)
	}
}

func (c *conn) cmdPing(args [][]byte) {
	switch len(args) {
	case 1:
		c.simple("PONG")
	case 2:
		c.bulk(args[1])
	default:
		c.errorf("ERR wrong number of arguments for 'ping' command")
	}
}

// cmdHello is HELLO [protover [AUTH username password] [SETNAME name]].
func (c *conn) cmdHello(args [][]byte) {
	proto := c.proto
	var user, pass, name []byte
	setName := false
	if len(args) > 1 {
		v, ok := parseInteger(args[1])
		if !ok {
			c.errorf("ERR Protocol version is not an integer or out of range")
			return
		}
		if v != 2 && v != 3 {
			c.errorf("NOPROTO unsupported protocol version")
			return
		}
		proto = int(v)
		for i := 2; i < len(args); i++ {
			switch opt := strings.ToUpper(string(args[i])); {
			case opt == "AUTH" && i+2 < len(args):
				user, pass = args[i+1], args[i+2]
				i += 2
			case opt == "SETNAME" && i+1 < len(args):
				name, setName = args[i+1], true
				i++
			default:
				c.errorf("ERR Syntax error in HELLO option '%s'", printable(args[i]))
				return
			}
		}
	}
	if pass != nil {
		if !c.auth(user, pass) {
			return
		}
	} else if !c.authed {
		c.errorf("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if setName {
		if !c.setName(name) {
			return
		}
	}
	c.proto = proto
	c.mapHeader(7)
	c.bulkString("server")
	c.bulkString("sluice")
	c.bulkString("version")
	c.bulkString(protocolVersion)
	c.bulkString("proto")
	c.integer(int64(c.proto))
	c.bulkString("id")
	c.integer(c.id)
	c.bulkString("mode")
	c.bulkString("standalone")
	c.bulkString("role")
	c.bulkString("master")
	c.bulkString("modules")
	c.array(0)
}

// protocolVersion is the Redis version whose commands sluice's answer as
// HELLO reports it.
const protocolVersion = "7.0.0"

// cmdAuth is AUTH [username] password: the password is the data token.
func (c *conn) cmdAuth(args [][]byte) {
	if len(args) > 3 {
		c.syntaxError()
		return
	}
	user, pass := []byte(nil), args[len(args)-1]
	if len(args) == 3 {
		user = args[1]
	}
	if c.s.cfg.Token == "" {
		c.errorf("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct? (this sluice node has no --data-token-file)")
		return
	}
	if c.auth(user, pass) {
		c.ok()
	}
}

// auth checks the data token (in constant time, of SHA-256 digests, as the
// gRPC port does); a failure is answered.
func (c *conn) auth(user, pass []byte) bool {
	if c.s.cfg.Token == "" {
		c.authed = true // HELLO AUTH on a node without a token: nothing to check
		return true
	}
	got := sha256.Sum256(pass)
	if (user == nil || string(user) == "default") && subtle.ConstantTimeCompare(got[:], c.s.token[:]) == 1 {
		c.authed = true
		return true
	}
	c.errorf("WRONGPASS invalid username-password pair or user is disabled.")
	return false
}

// cmdClient is CLIENT ID, SETNAME, GETNAME and SETINFO.
func (c *conn) cmdClient(args [][]byte) {
	sub := strings.ToUpper(string(args[1]))
	switch {
	case sub == "ID" && len(args) == 2:
		c.integer(c.id)
	case sub == "SETNAME" && len(args) == 3:
		if c.setName(args[2]) {
			c.ok()
		}
	case sub == "GETNAME" && len(args) == 2:
		if c.name == "" {
			c.null()
		} else {
			c.bulkString(c.name)
		}
	case sub == "SETINFO" && len(args) == 4:
		c.ok() // the library's name and version: taken, not kept
	case sub == "ID" || sub == "SETNAME" || sub == "GETNAME" || sub == "SETINFO":
		c.errorf("ERR wrong number of arguments for 'client|%s' command", strings.ToLower(sub))
	default:
		c.errorf("ERR unknown subcommand '%s'. sluice serves CLIENT ID, SETNAME, GETNAME and SETINFO", printable(args[1]))
	}
}

func (c *conn) setName(name []byte) bool {
	for _, b := range name {
		if b < '!' || b > '~' {
			c.errorf("ERR Client names cannot contain spaces, newlines or special characters.")
			return false
		}
	}
	c.name = string(name)
	return true
}

// cmdSelect takes database 0, the only one.
func (c *conn) cmdSelect(args [][]byte) {
	if n, ok := parseInteger(args[1]); !ok {
		c.errorf("ERR value is not an integer or out of range")
		return
	} else if n != 0 {
		c.errorf("ERR DB index is out of range (sluice has one keyspace: SELECT 0 only)")
		return
	}
	c.ok()
}

func (c *conn) cmdQuit([][]byte) {
	c.ok()
	c.flush()
	c.closeConn()
}

// cmdConsistency is SLUICE.CONSISTENCY [linearizable|session|eventual]:
// the level of this connection's reads (GET, MGET, EXISTS, SCAN); without
// an argument, the level it has.
func (c *conn) cmdConsistency(args [][]byte) {
	switch len(args) {
	case 1:
		c.bulkString(strings.ToLower(c.level.String()))
		return
	case 2:
	default:
		c.errorf("ERR wrong number of arguments for 'sluice.consistency' command")
		return
	}
	level, err := ParseConsistency(string(args[1]))
	if err != nil || len(args[1]) == 0 {
		c.errorf("ERR unknown consistency level '%s': linearizable (the default), session or eventual", printable(args[1]))
		return
	}
	c.level = level
	c.ok()
}

// ParseConsistency reads a read level by name, in any case: linearizable
// (also ""), session or eventual.
func ParseConsistency(name string) (sluicev1.Consistency, error) {
	if name == "" {
		return sluicev1.Consistency_LINEARIZABLE, nil
	}
	level, ok := sluicev1.Consistency_value[strings.ToUpper(name)]
	if !ok {
		return 0, fmt.Errorf("unknown consistency level '%s': linearizable (the default), session or eventual", name)
	}
	return sluicev1.Consistency(level), nil
}

func (c *conn) cmdCluster([][]byte) {
	c.errorf("ERR sluice offers no CLUSTER commands: its slots are not Redis Cluster's hash slots. Use a plain (not cluster) client against any node: each forwards a key to the node that owns it")
}

// validateKeys checks keys as the data plane would, before any is
// written: a bad one changes nothing.
func (c *conn) validateKeys(keys [][]byte) error {
	if len(keys) > maxKeys {
		return status.Errorf(codes.InvalidArgument, "at most %d keys a command, got %d", maxKeys, len(keys))
	}
	total := 0
	for i, k := range keys {
		if err := validateKey(k); err != nil {
			return status.Errorf(codes.InvalidArgument, "key %d: %v", i, err)
		}
		total += len(k)
	}
	if total > maxKeyBytes {
		return status.Errorf(codes.InvalidArgument, "at most %d bytes of keys a command (1 MiB), got %d", maxKeyBytes, total)
	}
	return nil
}

// isPrefixPattern reads a SCAN MATCH pattern: a prefix followed by one
// '*' (with Redis's escapes), or '*' alone. ok is false for any other.
func isPrefixPattern(p []byte) (prefix []byte, ok bool) {
	var out []byte
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			if i+1 == len(p) {
				return nil, false
			}
			i++
			out = append(out, p[i])
		case '*':
			if i != len(p)-1 {
				return nil, false
			}
			return bytes.Clone(out), true
		case '?', '[':
			return nil, false
		default:
			out = append(out, p[i])
		}
	}
	return nil, false // no '*': a single key, not a prefix
}
