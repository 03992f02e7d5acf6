package resp

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"

	"github.com/sluicedb/sluice/client"
)

// SCAN's cursor is a number to Redis clients (go-redis and redis-cli parse
// it as one), and a sluice scan resumes from a page token (a key and a
// checksum): the node keeps the tokens of the cursors it gave, the most
// recent maxCursors of them, any connection may resume one (clients scan
// through a pool of connections). A cursor it no longer has is refused
// with "invalid cursor": scan again from 0.
const (
	maxCursors   = 4096
	defaultCount = 10
	// maxCount bounds the keys of one SCAN answer (COUNT is a hint).
	maxCount = 1000
)

type cursors struct {
	mu     sync.Mutex
	tokens map[uint64][]byte
	order  []uint64 // ring of the cursors kept, oldest at next
	next   int
}

func (cs *cursors) init() {
	cs.tokens = make(map[uint64][]byte)
	cs.order = make([]uint64, maxCursors)
}

// put keeps token and returns its cursor.
func (cs *cursors) put(token []byte) uint64 {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	var id uint64
	for id == 0 || cs.tokens[id] != nil {
		id = rand.Uint64() >> 1 // Redis's cursors are unsigned; some clients read them signed
	}
	delete(cs.tokens, cs.order[cs.next])
	cs.order[cs.next] = id
	cs.next = (cs.next + 1) % maxCursors
	cs.tokens[id] = token
	return id
}

func (cs *cursors) get(id uint64) ([]byte, bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	t, ok := cs.tokens[id]
	return t, ok
}

// cmdScan is SCAN cursor [MATCH prefix*] [COUNT n] [TYPE string]. sluice
// scans by key prefix: MATCH takes a prefix followed by one '*' (or '*'
// alone, every key); the answer is in key order, across the cluster.
func (c *conn) cmdScan(args [][]byte) {
	cursor, ok := parseInteger(args[1])
	if !ok || cursor < 0 {
		c.errorf("ERR invalid cursor")
		return
	}
	o := client.ScanOptions{Start: []byte{1}, Limit: defaultCount} // every key
	for i := 2; i < len(args); i += 2 {
		if i+1 == len(args) {
			c.syntaxError()
			return
		}
		switch strings.ToUpper(string(args[i])) {
		case "MATCH":
			prefix, ok := isPrefixPattern(args[i+1])
			if !ok {
				c.errorf("ERR sluice: SCAN MATCH takes a key prefix followed by one '*' (such as user:*), or '*': sluice scans by prefix, not by glob pattern; got '%s'", printable(args[i+1]))
				return
			}
			if len(prefix) > 0 {
				o.Prefix, o.Start = prefix, nil
			} else {
				o.Prefix, o.Start = nil, []byte{1}
			}
		case "COUNT":
			n, ok := parseInteger(args[i+1])
			if !ok {
				c.errorf("ERR value is not an integer or out of range")
				return
			}
			if n < 1 {
				c.syntaxError()
				return
			}
			o.Limit = int(min(n, maxCount))
		case "TYPE":
			if !strings.EqualFold(string(args[i+1]), "string") {
				// sluice's values are all strings: none is of another type.
				c.array(2)
				c.bulkString("0")
				c.array(0)
				return
			}
		default:
			c.syntaxError()
			return
		}
	}
	if cursor != 0 {
		token, ok := c.cursors().get(uint64(cursor))
		if !ok {
			c.errorf("ERR invalid cursor (sluice keeps the most recent %d cursors of a node; scan again from 0)", maxCursors)
			return
		}
		o.PageToken = token
	}
	if c.s.fwd == nil {
		c.errorf("ERR sluice: SCAN needs the node's forwarding client (the RESP endpoint has no data address)")
		return
	}
	o.Consistency = client.Consistency(c.level)
	if o.Consistency == client.SessionRead {
		o.Session = c.clientSession()
	}
	ctx, cancel := c.forwardCtx()
	defer cancel()
	var keys [][]byte
	next, err := c.s.fwd.ScanFunc(ctx, o, func(kv client.KeyValue) bool {
		keys = append(keys, kv.Key)
		return true
	})
	if err != nil {
		c.replyRead(err)
		return
	}
	c.array(2)
	if next == nil {
		c.bulkString("0")
	} else {
		c.bulkString(strconv.FormatUint(c.cursors().put(next), 10))
	}
	c.array(len(keys))
	for _, k := range keys {
		c.bulk(k)
	}
}

func (c *conn) cursors() *cursors { return &c.s.cursors }
