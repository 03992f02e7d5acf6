package resp

// An inline command is a line of text (what telnet or nc send), not a
// RESP array. redcon splits it by its own rules, which are not Redis's: a
// NUL byte, \xHH and \a escapes, tabs and quotes inside a word read
// differently. So inline commands are split here, as Redis splits them
// (its sdssplitargs), and handed to redcon as arrays.

// splitInline splits an inline command line (without its line end) into
// arguments as Redis does: words separated by white space; a word may be
// in double quotes (with the escapes \n \r \t \b \a, \xHH and \<any>) or
// single quotes (with \'); a closing quote must be followed by a space or
// the end. A NUL byte outside quotes ends the line, as it ends a C string:
// "x\x00y" is the command "x". ok is false for unbalanced quotes.
func splitInline(line []byte) (args [][]byte, ok bool) {
	at := func(i int) byte { // the line as C reads it: 0 past its end
		if i < len(line) {
			return line[i]
		}
		return 0
	}
	i := 0
	for {
		for at(i) != 0 && isSpace(at(i)) {
			i++
		}
		if at(i) == 0 {
			return args, true
		}
		arg := []byte{}
		inDouble, inSingle := false, false
		for done := false; !done; {
			c := at(i)
			switch {
			case inDouble:
				switch {
				case c == '\\' && at(i+1) == 'x' && isHex(at(i+2)) && isHex(at(i+3)):
					arg = append(arg, hexValue(at(i+2))<<4|hexValue(at(i+3)))
					i += 3
				case c == '\\' && at(i+1) != 0:
					i++
					arg = append(arg, unescape(at(i)))
				case c == '"':
					if next := at(i + 1); next != 0 && !isSpace(next) {
						return nil, false
					}
					done = true
				case c == 0:
					return nil, false
				default:
					arg = append(arg, c)
				}
			case inSingle:
				switch {
				case c == '\\' && at(i+1) == '\'':
					i++
					arg = append(arg, '\'')
				case c == '\'':
					if next := at(i + 1); next != 0 && !isSpace(next) {
						return nil, false
					}
					done = true
				case c == 0:
					return nil, false
				default:
					arg = append(arg, c)
				}
			default:
				switch c {
				case ' ', '\n', '\r', '\t', 0:
					done = true
				case '"':
					inDouble = true
				case '\'':
					inSingle = true
				default:
					arg = append(arg, c)
				}
			}
			if at(i) != 0 {
				i++
			}
		}
		args = append(args, arg)
	}
}

// isSpace is C's isspace.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hexValue(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}
