package msgpack

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// MaxDepth bounds the nesting of arrays and maps Decode follows; it is the
// nesting limit of encoding/json's decoder and of the Socket.IO argument
// encoder, so whatever Decode returns can be encoded again.
const MaxDepth = 10000

// Decode parses b, which must hold exactly one MessagePack value. Errors wrap
// ErrTruncated, ErrTrailingBytes, ErrInvalid or ErrTooDeep.
func Decode(b []byte) (any, error) {
	d := decoder{b: b}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.off != len(b) {
		return nil, fmt.Errorf("%w: %d byte(s)", ErrTrailingBytes, len(b)-d.off)
	}
	return v, nil
}

type decoder struct {
	b   []byte
	off int
}

// take returns the next n bytes.
func (d *decoder) take(n int) ([]byte, error) {
	if n < 0 || len(d.b)-d.off < n {
		return nil, ErrTruncated
	}
	s := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return s, nil
}

func (d *decoder) byte1() (byte, error) {
	if d.off >= len(d.b) {
		return 0, ErrTruncated
	}
	c := d.b[d.off]
	d.off++
	return c, nil
}

// uint reads a big-endian unsigned integer of size bytes (1, 2, 4 or 8).
func (d *decoder) uint(size int) (uint64, error) {
	s, err := d.take(size)
	if err != nil {
		return 0, err
	}
	switch size {
	case 1:
		return uint64(s[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(s)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(s)), nil
	default:
		return binary.BigEndian.Uint64(s), nil
	}
}

// length reads a length of size bytes as an int.
func (d *decoder) length(size int) (int, error) {
	n, err := d.uint(size)
	if err != nil {
		return 0, err
	}
	if n > uint64(len(d.b)) { // cannot fit: no need to go further
		return 0, ErrTruncated
	}
	return int(n), nil
}

func (d *decoder) value(depth int) (any, error) {
	c, err := d.byte1()
	if err != nil {
		return nil, err
	}
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c <= 0x8f:
		return d.mapN(int(c&0x0f), depth)
	case c <= 0x9f:
		return d.arrayN(int(c&0x0f), depth)
	case c <= 0xbf:
		return d.str(int(c & 0x1f))
	case c >= 0xe0:
		return int64(int8(c)), nil
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	case 0xc4, 0xc5, 0xc6:
		n, err := d.length(1 << (c - 0xc4))
		if err != nil {
			return nil, err
		}
		return d.take(n)
	case 0xc7, 0xc8, 0xc9:
		n, err := d.length(1 << (c - 0xc7))
		if err != nil {
			return nil, err
		}
		return d.ext(n, true)
	case 0xca:
		u, err := d.uint(4)
		return float64(math.Float32frombits(uint32(u))), err
	case 0xcb:
		u, err := d.uint(8)
		return math.Float64frombits(u), err
	case 0xcc, 0xcd, 0xce, 0xcf:
		u, err := d.uint(1 << (c - 0xcc))
		if err != nil {
			return nil, err
		}
		if u > math.MaxInt64 {
			return u, nil
		}
		return int64(u), nil
	case 0xd0:
		u, err := d.uint(1)
		return int64(int8(u)), err
	case 0xd1:
		u, err := d.uint(2)
		return int64(int16(u)), err
	case 0xd2:
		u, err := d.uint(4)
		return int64(int32(u)), err
	case 0xd3:
		u, err := d.uint(8)
		return int64(u), err
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		return d.ext(1<<(c-0xd4), false)
	case 0xd9, 0xda, 0xdb:
		n, err := d.length(1 << (c - 0xd9))
		if err != nil {
			return nil, err
		}
		return d.str(n)
	case 0xdc, 0xdd:
		n, err := d.length(2 << (c - 0xdc))
		if err != nil {
			return nil, err
		}
		return d.arrayN(n, depth)
	case 0xde, 0xdf:
		n, err := d.length(2 << (c - 0xde))
		if err != nil {
			return nil, err
		}
		return d.mapN(n, depth)
	}
	return nil, fmt.Errorf("%w: byte 0x%02x at offset %d starts no value", ErrInvalid, c, d.off-1)
}

func (d *decoder) str(n int) (any, error) {
	s, err := d.take(n)
	if err != nil {
		return nil, err
	}
	return string(s), nil
}

func (d *decoder) arrayN(n int, depth int) (any, error) {
	if depth >= MaxDepth {
		return nil, ErrTooDeep
	}
	if n > len(d.b)-d.off { // every element takes at least one byte
		return nil, ErrTruncated
	}
	out := make([]any, n)
	for i := range out {
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (d *decoder) mapN(n int, depth int) (any, error) {
	if depth >= MaxDepth {
		return nil, ErrTooDeep
	}
	if n > (len(d.b)-d.off)/2 { // every entry takes at least two bytes
		return nil, ErrTruncated
	}
	out := make(map[string]any, n)
	for range n {
		k, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out[KeyString(k)] = v
	}
	return out, nil
}

// ext decodes an extension whose data is n bytes long; the type byte comes
// first. variable tells the ext forms (0xc7-0xc9) from the fixext ones
// (0xd4-0xd8).
func (d *decoder) ext(n int, variable bool) (any, error) {
	tb, err := d.byte1()
	if err != nil {
		return nil, err
	}
	typ := int8(tb)
	data, err := d.take(n)
	if err != nil {
		return nil, err
	}
	switch {
	case typ == 0 && variable:
		return data, nil // notepack's ArrayBuffer encoding
	case typ == 0 && n == 1:
		return nil, nil // notepack's undefined
	case typ == 0 && n == 8:
		// notepack's legacy date: milliseconds as a signed 64-bit integer
		ms := int64(binary.BigEndian.Uint64(data))
		return jsDate(ms/1000, (ms%1000)*1e6), nil
	case typ == -1 && !variable && n == 4:
		return jsDate(int64(binary.BigEndian.Uint32(data)), 0), nil
	case typ == -1 && !variable && n == 8:
		v := binary.BigEndian.Uint64(data)
		return jsDate(int64(v&(1<<34-1)), int64(v>>34)), nil
	case typ == -1 && variable && n == 12:
		ns := binary.BigEndian.Uint32(data)
		s := int64(binary.BigEndian.Uint64(data[4:]))
		return jsDate(s, int64(ns)), nil
	}
	return []any{int64(typ), data}, nil
}

// maxDateSeconds is the range of a JavaScript Date: 8.64e15 ms either side
// of the epoch.
const maxDateSeconds = 8.64e12

// jsDate returns the time of a timestamp, or nil where JavaScript's Date
// would be invalid (JSON.stringify makes null of it).
func jsDate(s, ns int64) any {
	if s > maxDateSeconds || s < -maxDateSeconds {
		return nil
	}
	return time.Unix(s, ns).UTC()
}

// KeyString returns the property name JavaScript makes of a decoded map key.
func KeyString(k any) string {
	switch x := k.(type) {
	case string:
		return x
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		return FormatNumber(x)
	case []byte:
		return string(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []any:
		parts := make([]string, len(x))
		for i, el := range x {
			if el != nil {
				parts[i] = KeyString(el)
			}
		}
		return strings.Join(parts, ",")
	default:
		return "[object Object]"
	}
}

// FormatNumber formats f as JavaScript's Number.prototype.toString does for
// the common cases: shortest representation, exponent form below 1e-6 and
// from 1e21 up.
func FormatNumber(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		return "0"
	}
	abs := math.Abs(f)
	if abs >= 1e-6 && abs < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // 1e-07, 1e+21
	mant, exp, _ := strings.Cut(s, "e")
	sign := exp[0]
	exp = strings.TrimLeft(exp[1:], "0")
	return mant + "e" + string(sign) + exp
}
