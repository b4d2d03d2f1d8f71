package parser

// Helpers that look into JSON text without decoding it. Except for
// scanString, which checks its own bounds, they assume input that
// encoding/json.Valid accepted; they still never index out of range.

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
)

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// skipSpace returns the index of the first non-whitespace byte at or after i.
func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// trimRightSpace removes JSON whitespace from the end of b.
func trimRightSpace(b []byte) []byte {
	j := len(b)
	for j > 0 && isSpace(b[j-1]) {
		j--
	}
	return b[:j]
}

// scanString scans the JSON string starting at b[i] == '"'. It returns the
// index just past the closing quote (-1 when the string is unterminated) and
// whether the contents can be used as a Go string as they are: no escapes, no
// control characters and valid UTF-8.
func scanString(b []byte, i int) (end int, verbatim bool) {
	verbatim = true
	ascii := true
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			if !ascii && verbatim {
				verbatim = utf8.Valid(b[i+1 : j])
			}
			return j + 1, verbatim
		case c == '\\':
			verbatim = false
			j++ // skip the escaped byte; \uXXXX needs no special care here
		case c < 0x20:
			verbatim = false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return -1, false
}

// firstIsString reports whether the JSON array arr has a string as its first
// element.
func firstIsString(arr []byte) bool {
	i := skipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return false
	}
	i = skipSpace(arr, i+1)
	return i < len(arr) && arr[i] == '"'
}

var errMalformed = errors.New("malformed JSON")

// placeholderChecker walks valid JSON and checks every binary placeholder
// (an object whose "_placeholder" member is true) against n attachments.
type placeholderChecker struct {
	b []byte
	n int
}

// checkPlaceholders reports an error when some placeholder in the valid JSON
// b does not have a "num" member naming one of n attachments.
func checkPlaceholders(b []byte, n int) error {
	c := placeholderChecker{b: b, n: n}
	_, err := c.value(0)
	return err
}

func (c *placeholderChecker) at(i int) byte {
	if i < len(c.b) {
		return c.b[i]
	}
	return 0
}

// value checks the value at or after i and returns the index just past it.
func (c *placeholderChecker) value(i int) (int, error) {
	i = skipSpace(c.b, i)
	switch c.at(i) {
	case '{':
		return c.object(i)
	case '[':
		i = skipSpace(c.b, i+1)
		if c.at(i) == ']' {
			return i + 1, nil
		}
		for {
			var err error
			if i, err = c.value(i); err != nil {
				return i, err
			}
			i = skipSpace(c.b, i)
			switch c.at(i) {
			case ',':
				i++
			case ']':
				return i + 1, nil
			default:
				return i, errMalformed
			}
		}
	case '"':
		end, _ := scanString(c.b, i)
		if end < 0 {
			return i, errMalformed
		}
		return end, nil
	case 0:
		return i, errMalformed
	default: // number, true, false, null
		j := i
		for j < len(c.b) && !isSpace(c.b[j]) && c.b[j] != ',' && c.b[j] != ']' && c.b[j] != '}' {
			j++
		}
		return j, nil
	}
}

const (
	keyOther = iota
	keyPlaceholder
	keyNum
)

func (c *placeholderChecker) object(i int) (int, error) {
	isPlaceholder, numValid := false, false
	i = skipSpace(c.b, i+1)
	if c.at(i) == '}' {
		return i + 1, nil
	}
	for {
		if c.at(i) != '"' {
			return i, errMalformed
		}
		end, verbatim := scanString(c.b, i)
		if end < 0 {
			return i, errMalformed
		}
		key := classifyKey(c.b[i:end], verbatim)
		i = skipSpace(c.b, end)
		if c.at(i) != ':' {
			return i, errMalformed
		}
		start := skipSpace(c.b, i+1)
		var err error
		if i, err = c.value(start); err != nil {
			return i, err
		}
		// Later duplicates win, as with JSON.parse.
		switch key {
		case keyPlaceholder:
			isPlaceholder = string(c.b[start:i]) == "true"
		case keyNum:
			_, numValid = attachmentIndex(c.b[start:i], c.n)
		}
		i = skipSpace(c.b, i)
		switch c.at(i) {
		case ',':
			i = skipSpace(c.b, i+1)
		case '}':
			if isPlaceholder && !numValid {
				return i + 1, errBadPlaceholder
			}
			return i + 1, nil
		default:
			return i, errMalformed
		}
	}
}

var errBadPlaceholder = errors.New("placeholder does not name an attachment")

// classifyKey tells the two member names of a placeholder apart from the
// rest; quoted is the JSON string with its quotes.
func classifyKey(quoted []byte, verbatim bool) int {
	raw := quoted[1 : len(quoted)-1]
	if !verbatim {
		var key string
		if json.Unmarshal(quoted, &key) != nil {
			return keyOther
		}
		raw = []byte(key)
	}
	switch {
	case string(raw) == "_placeholder":
		return keyPlaceholder
	case string(raw) == "num":
		return keyNum
	}
	return keyOther
}

// attachmentIndex parses the JSON number lit as an index into n attachments.
// Like socket.io-parser it accepts any JSON number with an integral value in
// range (1.0 and 1e0 name attachment 1); anything else is refused.
func attachmentIndex[T string | []byte](lit T, n int) (int, bool) {
	if len(lit) == 0 || len(lit) > 32 {
		return 0, false
	}
	if len(lit) <= 9 {
		v, digits := 0, true
		for i := 0; i < len(lit); i++ {
			if !isDigit(lit[i]) {
				digits = false
				break
			}
			v = v*10 + int(lit[i]-'0')
		}
		if digits {
			return v, v < n
		}
	}
	if lit[0] != '-' && !isDigit(lit[0]) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil || f != math.Trunc(f) || f < 0 || f >= float64(n) {
		return 0, false
	}
	return int(f), true
}
