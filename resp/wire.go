package resp

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/sluicedb/sluice/kv"
)

// What a connection sends is followed here, on its way to redcon, which
// parses it but would buffer whatever it is sent: a bulk string announced
// at 1 GiB would be buffered whole, a client that pipelines without pause
// grows redcon's buffer without end (it grows it when full and only
// rewinds it when empty), and an unauthenticated client could make it hold
// a megabyte. So the connection's bytes are checked from the commands'
// headers before redcon sees them: a command that cannot fit, or that
// Redis would refuse, is refused at its header (as Redis refuses a bulk
// string over its proto-max-bulk-len): the commands before it are
// answered, then an error, and the connection is closed.
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
	// Until a connection has given AUTH (on a node with a data token), a
	// command has at most MaxArgsBeforeAuth arguments of at most
	// MaxBulkBeforeAuth bytes each: Redis's own limits, which keep what an
	// unauthenticated client makes the node hold to a few hundred KiB.
	MaxArgsBeforeAuth = 10
	MaxBulkBeforeAuth = 16 << 10

	// maxArgs bounds the arguments of a command: each takes 4 bytes or more.
	maxArgs = MaxCommandBytes / 4
	// maxHeader is longer than any valid header line ("*-9223372036854775808\r\n").
	maxHeader = 32
	// alignAt: once this many bytes were handed to redcon since a hand-over
	// last ended at a command's end, the next hand-over ends at one, so
	// that redcon's buffer empties and shrinks. Below it a pipeline's
	// commands are handed as they arrive, and redcon reads them in batches.
	alignAt = 1 << 20
)

// errRefused is why a connection's input was refused.
var errRefused = errors.New("resp: input over the limits")

// listener hands redcon connections whose input is checked (wireConn) and
// whose empty writes cost no system call (redcon flushes its own writer,
// always empty here, after every batch of commands).
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

// wireConn is one client connection as redcon reads and writes it. Its
// Read hands redcon the client's bytes once they are checked, in place
// where they need no change; an empty array (*0, *-1) is dropped, as Redis
// ignores it, and an inline command is split as Redis splits it and handed
// as an array.
type wireConn struct {
	net.Conn
	// mustAuth, if set, says whether the connection has yet to AUTH: its
	// commands are held to the limits before AUTH, and handed one at a
	// time, so that the one after an AUTH is checked once AUTH has run.
	mustAuth func() bool
	f        frame
	// in holds bytes read from the client that are not handed yet, not
	// checked either (a Read ended before them, or they need more bytes
	// to be checked: a header line, an inline command).
	in []byte
	// ready is an inline command as an array, handed before anything else.
	ready []byte
	// since counts the bytes handed since a hand-over last ended at a
	// command's end.
	since int
	// refused, once set, is the reply the next Read writes before it
	// fails: the commands before the refused one are handed first, and
	// redcon reads again only once it answered them.
	refused string
}

// frame is where a connection is in the command it sends.
type frame struct {
	state   uint8
	count   int64 // bulk strings of the command
	args    int64 // bulk strings left in the command
	left    int64 // bytes left of the header line or bulk string passing
	payload int64 // after a bulk string's header: its bytes, CRLF included; -1 after the array's header
	size    int64 // bytes of the command so far
	unauth  bool  // the command is held to the limits before AUTH
}

const (
	stStart   = iota // at a command's start
	stBulk           // at a bulk string's header, $LEN\r\n
	stHeader         // passing a header line
	stPayload        // passing a bulk string and its CRLF
)

// What stopped take.
type event uint8

const (
	evDone    event = iota // it took all of src, or p is full
	evCut                  // the hand-over ends before this command
	evMore                 // a header line or inline command is not whole in src
	evInline               // src starts with a whole inline command
	evRefused              // refused: w.refused says why
)

func (w *wireConn) Read(p []byte) (int, error) {
	if len(w.ready) > 0 {
		k := copy(p, w.ready)
		if w.ready = w.ready[k:]; len(w.ready) == 0 {
			w.ready = nil
		}
		return k, nil
	}
	if w.refused != "" {
		_ = w.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = w.Conn.Write([]byte("-ERR Protocol error: " + w.refused + "\r\n"))
		return 0, errRefused
	}
	n, whole := 0, false
	var carried []byte // bytes in place at p[n:], to take before reading again
	for n < len(p) {
		src, inPlace := w.in, false
		switch {
		case carried != nil:
			src, inPlace, carried = carried, true, nil
		case len(src) == 0:
			if whole {
				return w.hand(n), nil // whole commands are handed now rather than after more bytes
			}
			k, err := w.Conn.Read(p[n:])
			if k <= 0 {
				if n > 0 {
					return w.hand(n), nil
				}
				return 0, err
			}
			src, inPlace = p[n:n+k], true
		}
		used, ev := w.take(p, &n, &whole, src)
		if rest := src[used:]; inPlace {
			if len(rest) > 0 {
				w.in = bytes.Clone(rest)
			}
		} else if w.in = rest; len(w.in) == 0 {
			w.in = nil
		}
		switch ev {
		case evCut:
			return w.hand(n), nil
		case evMore:
			if n > 0 {
				return w.hand(n), nil
			}
			if len(w.in) > len(p)/2 { // a long inline command
				if err := w.readMore(); err != nil {
					return 0, err
				}
				continue
			}
			// The start of a header line: the bytes after it are read in
			// place after it.
			k0 := copy(p, w.in)
			w.in = nil
			k, err := w.Conn.Read(p[k0:])
			if k <= 0 {
				return 0, err
			}
			carried = p[:k0+k]
		case evInline:
			end := bytes.IndexByte(w.in, '\n') + 1
			cmd, refused := inlineCommand(w.in[:end], w.f.unauth)
			if w.in = w.in[end:]; len(w.in) == 0 {
				w.in = nil
			}
			switch {
			case refused != "":
				w.refused = refused
				if n > 0 {
					return w.hand(n), nil
				}
				return w.Read(p)
			case len(cmd) == 0: // an empty line: Redis ignores it
			case len(cmd) <= len(p)-n:
				n += copy(p[n:], cmd)
				w.since += len(cmd)
				whole = true
			default:
				w.ready = cmd
				if n > 0 {
					return w.hand(n), nil
				}
				return w.Read(p)
			}
		case evRefused:
			if n > 0 {
				return w.hand(n), nil
			}
			return w.Read(p)
		}
	}
	return w.hand(n), nil
}

// hand returns n, the bytes a Read hands over, noting whether they end at
// a command's end.
func (w *wireConn) hand(n int) int {
	if w.f.state == stStart {
		w.since = 0
	}
	return n
}

// readMore reads the client's next bytes after those in w.in.
func (w *wireConn) readMore() error {
	if cap(w.in)-len(w.in) < 4<<10 {
		in := make([]byte, len(w.in), len(w.in)+16<<10)
		copy(in, w.in)
		w.in = in
	}
	k, err := w.Conn.Read(w.in[len(w.in):cap(w.in)])
	w.in = w.in[:len(w.in)+k]
	if k > 0 {
		return nil
	}
	return err
}

func (w *wireConn) refuse(format string, args ...any) event {
	w.refused = fmt.Sprintf(format, args...)
	return evRefused
}

// take follows src, the client's next bytes, and copies those redcon may
// have to p[*n:] (src may be that part of p itself). It returns how many
// bytes of src it took, and why it stopped: at src's end or p's, or at an
// event. whole is set once a command in p ends.
func (w *wireConn) take(p []byte, n *int, whole *bool, src []byte) (used int, ev event) {
	f := &w.f
	i := 0
	for i < len(src) && *n < len(p) {
		switch f.state {
		case stStart:
			f.unauth = w.mustAuth != nil && w.mustAuth()
			if *n > 0 && (f.unauth || w.since >= alignAt) {
				return i, evCut
			}
			if src[i] != '*' {
				switch line := bytes.IndexByte(src[i:], '\n'); {
				case line >= 0 && line <= MaxInlineBytes+1:
					return i, evInline
				case line >= 0 || len(src)-i > MaxInlineBytes+1:
					return i, w.refuse("too big inline request (over %d bytes)", MaxInlineBytes)
				}
				return i, evMore
			}
			count, size, more, ok := header(src[i:])
			switch {
			case more:
				return i, evMore
			case !ok:
				return i, w.refuse("invalid multibulk length")
			case count <= 0: // an empty command: Redis ignores it
				i += size
				continue
			case f.unauth && count > MaxArgsBeforeAuth:
				return i, w.refuse("unauthenticated multibulk length (at most %d arguments a command before AUTH)", MaxArgsBeforeAuth)
			case count > maxArgs:
				return i, w.refuse("a command of %d arguments cannot fit in sluice's limit of %d bytes a command", count, MaxCommandBytes)
			}
			f.count, f.args, f.size = count, count, int64(size)
			f.state, f.left, f.payload = stHeader, int64(size), -1
		case stBulk:
			if src[i] != '$' {
				return i, w.refuse("expected '$', got '%s'", printable(src[i:i+1]))
			}
			length, size, more, ok := header(src[i:])
			switch {
			case more:
				return i, evMore
			case !ok || length < 0:
				return i, w.refuse("invalid bulk length")
			case f.unauth && length > MaxBulkBeforeAuth:
				return i, w.refuse("unauthenticated bulk length (a bulk string of %d bytes; at most %d before AUTH)", length, MaxBulkBeforeAuth)
			case int64(size)+length+2 > MaxCommandBytes-32:
				return i, w.refuse("a bulk string of %d bytes is over sluice's limit of %d bytes a command (a value is at most 1 MiB with its key)", length, MaxCommandBytes)
			case f.size+int64(size)+length+2 > MaxCommandBytes:
				return i, w.refuse("a command of more than %d bytes (at its argument %d of %d) is over sluice's limit of %d bytes a command", f.size+int64(size)+length+2, f.count-f.args+1, f.count, MaxCommandBytes)
			}
			f.size += int64(size) + length + 2
			f.state, f.left, f.payload = stHeader, int64(size), length+2
		case stHeader, stPayload:
			k := int(min(int64(len(src)-i), int64(len(p)-*n), f.left))
			if f.state == stPayload {
				// The bulk string's last two bytes are its CRLF.
				for o, want := range []byte{'\r', '\n'} {
					if at := f.left - 2 + int64(o); at >= 0 && at < int64(k) && src[i+int(at)] != want {
						return i, w.refuse("invalid bulk length (a bulk string of %d bytes is not followed by CRLF)", f.payload-2)
					}
				}
			}
			if &p[*n] != &src[i] {
				copy(p[*n:], src[i:i+k])
			}
			i, *n, w.since, f.left = i+k, *n+k, w.since+k, f.left-int64(k)
			if f.left > 0 {
				continue
			}
			switch {
			case f.state == stHeader && f.payload >= 0:
				f.state, f.left = stPayload, f.payload
			case f.state == stHeader:
				f.state = stBulk
			default:
				if f.args--; f.args > 0 {
					f.state = stBulk
				} else {
					f.state = stStart
					*whole = true
				}
			}
		}
	}
	return i, evDone
}

// header reads the header line at b's start (*N or $N, then CRLF) as Redis
// does: its number and its length, with more set when b does not hold all
// of it yet; ok is false when it is not a valid one.
func header(b []byte) (num int64, size int, more, ok bool) {
	end := bytes.IndexByte(b[:min(len(b), maxHeader)], '\n')
	if end < 0 {
		return 0, 0, len(b) < maxHeader, false
	}
	if end < 2 || b[end-1] != '\r' {
		return 0, 0, false, false
	}
	num, ok = parseInteger(b[1 : end-1])
	return num, end + 1, false, ok
}

// inlineCommand is an inline command line (its LF included) as an array,
// nil for a line without arguments, or the reason it is refused.
func inlineCommand(line []byte, unauth bool) (cmd []byte, refused string) {
	line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
	if len(line) > MaxInlineBytes {
		return nil, fmt.Sprintf("too big inline request (over %d bytes)", MaxInlineBytes)
	}
	args, ok := splitInline(line)
	if !ok {
		return nil, "unbalanced quotes in request"
	}
	if unauth && len(args) > MaxArgsBeforeAuth {
		return nil, fmt.Sprintf("unauthenticated multibulk length (at most %d arguments a command before AUTH)", MaxArgsBeforeAuth)
	}
	if len(args) == 0 {
		return nil, ""
	}
	cmd = append(cmd, '*')
	cmd = strconv.AppendInt(cmd, int64(len(args)), 10)
	cmd = append(cmd, '\r', '\n')
	for _, a := range args {
		if unauth && len(a) > MaxBulkBeforeAuth {
			return nil, fmt.Sprintf("unauthenticated bulk length (a bulk string of %d bytes; at most %d before AUTH)", len(a), MaxBulkBeforeAuth)
		}
		cmd = append(cmd, '$')
		cmd = strconv.AppendInt(cmd, int64(len(a)), 10)
		cmd = append(cmd, '\r', '\n')
		cmd = append(cmd, a...)
		cmd = append(cmd, '\r', '\n')
	}
	return cmd, ""
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
