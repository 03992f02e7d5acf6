package resp

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/sluicedb/sluice/kv"
)

// Limits of what one connection sends. redcon buffers a command whole
// before it hands it over, and grows its buffer for as long as a command
// goes on: a client that announced a bulk string of 1 GiB would make the
// node buffer 1 GiB. So the bytes are counted as they arrive, from the
// commands' own headers, before redcon sees them, and a command that cannot
// fit is refused at its header (as Redis refuses a bulk string over its
// proto-max-bulk-len): an error reply, and the connection is closed.
const (
	// MaxCommandBytes bounds one command, framing included: the largest
	// valid one (a SET of 1 MiB of key and value, an MGET of 1 MiB of keys)
	// and room for its framing. A value between 1 MiB and this gets the
	// data plane's own answer (over the limit of 1 MiB); one beyond it
	// ends the connection.
	MaxCommandBytes = kv.MaxBatchBytes + 64<<10
	// MaxInlineBytes bounds a command in the inline (telnet) form: Redis's
	// own limit.
	MaxInlineBytes = 64 << 10
)

// errRefused is why a connection's input was refused.
var errRefused = errors.New("resp: input over the limits")

// listener hands redcon connections whose input is checked against the
// limits and whose empty writes cost no system call (redcon flushes its own
// writer, always empty here, after every batch of commands).
type listener struct {
	net.Listener
}

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &wireConn{Conn: c}, nil
}

// wireConn is one client connection as redcon reads and writes it.
type wireConn struct {
	net.Conn
	f frames
	// refused, once set, is the reply the next Read writes before it
	// fails: the bytes read before the refused command were handed over
	// first, and redcon reads again only once it answered them.
	refused string
}

func (w *wireConn) Read(p []byte) (int, error) {
	if w.refused != "" {
		_ = w.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = w.Conn.Write([]byte("-ERR Protocol error: " + w.refused + "\r\n"))
		return 0, errRefused
	}
	n, err := w.Conn.Read(p)
	if n > 0 {
		k, msg := w.f.scan(p[:n])
		if msg != "" {
			w.refused = msg
			if k == 0 {
				return w.Read(p)
			}
			return k, nil
		}
	}
	return n, err
}

func (w *wireConn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return w.Conn.Write(p)
}

// frames follows the RESP framing of a connection's input as it arrives,
// as redcon parses it: a command is an array of bulk strings (*N, then N
// times $LEN and LEN bytes) or, when it does not start with '*', an inline
// line. It tells when a command cannot fit in the limits, from the headers
// alone. Input that is not valid framing is left to redcon, which answers
// a protocol error and closes the connection: frames stops following it.
type frames struct {
	state  uint8
	num    int64 // the number being read
	sign   bool  // it had a sign
	neg    bool  // the sign was '-'
	digits int   // its digits so far
	args   int64 // bulk strings left in the command
	left   int64 // bytes left of the bulk string being skipped, CRLF included
	size   int64 // bytes of the command so far
	broken bool
}

const (
	stStart = iota
	stInline
	stCount
	stCountLF
	stBulk
	stLen
	stLenLF
	stPayload
)

// scan follows p. It returns "" when all of p may go on, else the reason a
// command cannot fit, and k: the bytes of p before it was known.
func (f *frames) scan(p []byte) (k int, refused string) {
	for i := 0; i < len(p); {
		if f.broken {
			return len(p), ""
		}
		if f.state == stPayload {
			n := min(int64(len(p)-i), f.left)
			i += int(n)
			f.left -= n
			f.size += n
			if f.left == 0 {
				if f.args--; f.args == 0 {
					f.state = stStart
				} else {
					f.state = stBulk
				}
			}
			continue
		}
		b := p[i]
		switch f.state {
		case stStart:
			f.size = 0
			if b != '*' {
				f.state = stInline
				continue // the byte is the line's first
			}
			f.state, f.num, f.sign, f.neg, f.digits = stCount, 0, false, false, 0
		case stInline:
			if b == '\n' {
				f.state = stStart
			} else if f.size++; f.size > MaxInlineBytes {
				return i, fmt.Sprintf("too big inline request (over %d bytes)", MaxInlineBytes)
			}
			i++
			continue
		case stCount, stLen:
			if b == '\r' {
				if f.digits == 0 {
					f.broken = true // no digits: redcon refuses it
					continue
				}
				if f.state == stCount && f.num > MaxCommandBytes/4 {
					return i, fmt.Sprintf("a command of %d arguments cannot fit in sluice's limit of %d bytes a command", f.num, MaxCommandBytes)
				}
				if f.state == stLen && !f.neg && f.size+f.num > MaxCommandBytes {
					return i, fmt.Sprintf("a bulk string of %d bytes is over sluice's limit of %d bytes a command (a value is at most 1 MiB with its key)", f.num, MaxCommandBytes)
				}
				f.state++
				break
			}
			if !f.digit(b) {
				f.broken = true
				continue
			}
			if f.digits > 18 {
				return i, "invalid length (over 18 digits)"
			}
		case stCountLF:
			if b != '\n' || f.neg || f.num <= 0 {
				f.broken = true // redcon refuses a count of 0 or less
				continue
			}
			f.args, f.state = f.num, stBulk
		case stBulk:
			if b != '$' {
				f.broken = true
				continue
			}
			f.state, f.num, f.sign, f.neg, f.digits = stLen, 0, false, false, 0
		case stLenLF:
			if b != '\n' || (f.neg && f.num != 0) {
				f.broken = true
				continue
			}
			f.left, f.state = f.num+2, stPayload
		}
		f.size++
		i++
	}
	return len(p), ""
}

// digit takes the next character of a number as strconv.Atoi reads it (a
// sign first, then digits); false if it is not one.
func (f *frames) digit(b byte) bool {
	switch {
	case (b == '+' || b == '-') && f.digits == 0 && !f.sign:
		f.sign, f.neg = true, b == '-'
	case b >= '0' && b <= '9':
		f.num = f.num*10 + int64(b-'0') // at most 18 digits
		f.digits++
	default:
		return false
	}
	return true
}

// writeBuffers writes bufs to c in one system call where it can (a TCP
// connection: writev).
func writeBuffers(c net.Conn, bufs net.Buffers) error {
	if w, ok := c.(*wireConn); ok {
		c = w.Conn
	}
	_, err := bufs.WriteTo(c)
	return err
}
