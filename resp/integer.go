package resp

import "math"

// parseInteger reads b as Redis reads an integer argument (its string2ll):
// an optional '-', then 0 alone or digits without a leading zero, in
// int64's range. "+5", "012", "-0", " 5" and "" are not integers, as in
// Redis; strconv.ParseInt would take the first two.
func parseInteger(b []byte) (int64, bool) {
	digits := b
	if len(b) > 0 && b[0] == '-' {
		digits = b[1:]
	}
	if len(digits) == 0 || len(digits) > 19 || (digits[0] == '0' && (len(digits) > 1 || len(digits) < len(b))) {
		return 0, false
	}
	var u uint64 // 19 digits fit
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	switch {
	case len(digits) == len(b) && u <= math.MaxInt64:
		return int64(u), true
	case len(digits) < len(b) && u <= 1<<63:
		return -int64(u), true // -(1<<63) is int64's least
	}
	return 0, false
}
