package msgpack

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// Marshal returns the MessagePack encoding of v; see Append.
func Marshal(v any) ([]byte, error) {
	return Append(make([]byte, 0, 64), v)
}

// Append appends the MessagePack encoding of v to dst. v is made of nil,
// bool, the integer and float types, json.Number, string, []byte,
// time.Time, []any, []string, map[string]any and map[string]string, at any
// depth up to MaxDepth; anything else is an error wrapping
// ErrUnsupportedValue (convert it first, for example through encoding/json).
// Integral floats are encoded as integers, as notepack.io does; NaN and the
// infinities as float 64.
func Append(dst []byte, v any) ([]byte, error) {
	return appendValue(dst, v, 0)
}

func appendValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return b, ErrTooDeep
	}
	switch x := v.(type) {
	case nil:
		return append(b, 0xc0), nil
	case bool:
		if x {
			return append(b, 0xc3), nil
		}
		return append(b, 0xc2), nil
	case string:
		return AppendString(b, x), nil
	case []byte:
		return appendBin(b, x), nil
	case int:
		return AppendInt(b, int64(x)), nil
	case int8:
		return AppendInt(b, int64(x)), nil
	case int16:
		return AppendInt(b, int64(x)), nil
	case int32:
		return AppendInt(b, int64(x)), nil
	case int64:
		return AppendInt(b, x), nil
	case uint:
		return AppendUint(b, uint64(x)), nil
	case uint8:
		return AppendUint(b, uint64(x)), nil
	case uint16:
		return AppendUint(b, uint64(x)), nil
	case uint32:
		return AppendUint(b, uint64(x)), nil
	case uint64:
		return AppendUint(b, x), nil
	case float32:
		return AppendFloat(b, float64(x)), nil
	case float64:
		return AppendFloat(b, x), nil
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return AppendInt(b, i), nil
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return AppendUint(b, u), nil
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return b, fmt.Errorf("%w: json.Number %q", ErrUnsupportedValue, string(x))
		}
		return AppendFloat(b, f), nil
	case time.Time:
		return appendTime(b, x), nil
	case []any:
		b = appendArrayHeader(b, len(x))
		for _, el := range x {
			var err error
			if b, err = appendValue(b, el, depth+1); err != nil {
				return b, err
			}
		}
		return b, nil
	case []string:
		b = appendArrayHeader(b, len(x))
		for _, el := range x {
			b = AppendString(b, el)
		}
		return b, nil
	case map[string]any:
		b = appendMapHeader(b, len(x))
		var buf [16]string
		for _, k := range sortedKeys(buf[:0], x) {
			b = AppendString(b, k)
			var err error
			if b, err = appendValue(b, x[k], depth+1); err != nil {
				return b, err
			}
		}
		return b, nil
	case map[string]string:
		b = appendMapHeader(b, len(x))
		var buf [16]string
		for _, k := range sortedKeys(buf[:0], x) {
			b = AppendString(b, k)
			b = AppendString(b, x[k])
		}
		return b, nil
	}
	return b, fmt.Errorf("%w: %T", ErrUnsupportedValue, v)
}

// sortedKeys appends the keys of m to dst, sorted (dst on the caller's stack
// spares an allocation for small maps).
func sortedKeys[V any](dst []string, m map[string]V) []string {
	for k := range m {
		dst = append(dst, k)
	}
	slices.Sort(dst)
	return dst
}

// AppendString appends s as a MessagePack str.
func AppendString(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 0x20:
		b = append(b, 0xa0|byte(n))
	case n < 0x100:
		b = append(b, 0xd9, byte(n))
	case n < 0x10000:
		b = append(b, 0xda, byte(n>>8), byte(n))
	default:
		b = append(b, 0xdb)
		b = binary.BigEndian.AppendUint32(b, uint32(n))
	}
	return append(b, s...)
}

func appendBin(b []byte, p []byte) []byte {
	n := len(p)
	switch {
	case n < 0x100:
		b = append(b, 0xc4, byte(n))
	case n < 0x10000:
		b = append(b, 0xc5, byte(n>>8), byte(n))
	default:
		b = append(b, 0xc6)
		b = binary.BigEndian.AppendUint32(b, uint32(n))
	}
	return append(b, p...)
}

// AppendInt appends i in the smallest integer form notepack.io picks.
func AppendInt(b []byte, i int64) []byte {
	if i >= 0 {
		return AppendUint(b, uint64(i))
	}
	switch {
	case i >= -0x20:
		return append(b, byte(i))
	case i >= -0x80:
		return append(b, 0xd0, byte(i))
	case i >= -0x8000:
		return append(b, 0xd1, byte(i>>8), byte(i))
	case i >= -0x80000000:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(i))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(i))
}

// AppendUint appends u in the smallest unsigned integer form.
func AppendUint(b []byte, u uint64) []byte {
	switch {
	case u < 0x80:
		return append(b, byte(u))
	case u < 0x100:
		return append(b, 0xcc, byte(u))
	case u < 0x10000:
		return append(b, 0xcd, byte(u>>8), byte(u))
	case u < 0x100000000:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(u))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), u)
}

// AppendFloat appends f as an integer when it is integral and fits one (as
// notepack.io does with JavaScript numbers), else as a float 64.
func AppendFloat(b []byte, f float64) []byte {
	if f == math.Trunc(f) && !math.IsInf(f, 0) {
		switch {
		case f >= -(1<<63) && f < 1<<63:
			return AppendInt(b, int64(f))
		case f >= 0 && f < 1<<64:
			return AppendUint(b, uint64(f))
		}
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(f))
}

func appendArrayHeader(b []byte, n int) []byte {
	switch {
	case n < 0x10:
		return append(b, 0x90|byte(n))
	case n < 0x10000:
		return append(b, 0xdc, byte(n>>8), byte(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
}

func appendMapHeader(b []byte, n int) []byte {
	switch {
	case n < 0x10:
		return append(b, 0x80|byte(n))
	case n < 0x10000:
		return append(b, 0xde, byte(n>>8), byte(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(n))
}

// appendTime writes a timestamp extension with millisecond precision, the
// way notepack.io writes a JavaScript Date.
func appendTime(b []byte, t time.Time) []byte {
	ms := t.UnixMilli()
	s := ms / 1000
	if ms < 0 && ms%1000 != 0 {
		s-- // floor
	}
	ns := (ms - s*1000) * 1e6
	switch {
	case s >= 0 && s < 1<<34 && ns == 0 && s < 1<<32:
		b = append(b, 0xd6, 0xff)
		return binary.BigEndian.AppendUint32(b, uint32(s))
	case s >= 0 && s < 1<<34:
		b = append(b, 0xd7, 0xff)
		return binary.BigEndian.AppendUint64(b, uint64(ns)<<34|uint64(s))
	}
	b = append(b, 0xc7, 12, 0xff)
	b = binary.BigEndian.AppendUint32(b, uint32(ns))
	return binary.BigEndian.AppendUint64(b, uint64(s))
}
