package auth

import (
	"strings"
	"unicode/utf8"
)

// Match reports whether name matches the glob pattern.
//
// In a pattern '*' matches any run of characters, including none and
// including ':' and '/'; '?' matches exactly one character (one UTF-8
// encoded rune; a byte that is not valid UTF-8 counts as one character);
// every other byte matches itself. There is no escape character. The pattern
// "*" alone matches every name, including the empty one.
//
// Match does not backtrack: the pattern is split at its stars, the first and
// last pieces are anchored at the ends of name and the pieces in between are
// each placed at their leftmost possible position, which is optimal. A pattern
// without '?' therefore costs O(len(pattern)+len(name)) (piece searches use
// [strings.Index]); pieces containing '?' are tried at each position, which
// bounds the worst case by O(len(pattern)·len(name)), never exponential.
func Match(pattern, name string) bool {
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		n, ok := matchPrefix(pattern, name)
		return ok && n == len(name)
	}

	// Anchored first piece.
	head := pattern[:star]
	n, ok := matchPrefix(head, name)
	if !ok {
		return false
	}
	name = name[n:]
	pattern = pattern[star+1:]

	// Anchored last piece.
	last := strings.LastIndexByte(pattern, '*')
	tail := pattern[last+1:]
	n, ok = matchSuffix(tail, name)
	if !ok {
		return false // also covers a tail longer than what the head left
	}
	name = name[:len(name)-n]
	if last < 0 {
		return true // a single star: it takes whatever lies between head and tail
	}
	pattern = pattern[:last]

	// Middle pieces, each at its leftmost position within what remains.
	for pattern != "" {
		var piece string
		if i := strings.IndexByte(pattern, '*'); i >= 0 {
			piece, pattern = pattern[:i], pattern[i+1:]
		} else {
			piece, pattern = pattern, ""
		}
		if piece == "" {
			continue // consecutive stars
		}
		end, ok := findPiece(piece, name)
		if !ok {
			return false
		}
		name = name[end:]
	}
	return true
}

// matchPrefix matches the star-free piece against the start of s and returns
// how many bytes of s it consumed.
func matchPrefix(piece, s string) (int, bool) {
	j := 0
	for i := 0; i < len(piece); i++ {
		if j >= len(s) {
			return 0, false
		}
		if piece[i] == '?' {
			_, w := utf8.DecodeRuneInString(s[j:])
			j += w
			continue
		}
		if piece[i] != s[j] {
			return 0, false
		}
		j++
	}
	return j, true
}

// matchSuffix matches the star-free piece against the end of s and returns
// how many bytes of s it consumed.
func matchSuffix(piece, s string) (int, bool) {
	j := len(s)
	for i := len(piece) - 1; i >= 0; i-- {
		if j <= 0 {
			return 0, false
		}
		if piece[i] == '?' {
			_, w := utf8.DecodeLastRuneInString(s[:j])
			j -= w
			continue
		}
		if piece[i] != s[j-1] {
			return 0, false
		}
		j--
	}
	return len(s) - j, true
}

// findPiece finds the leftmost occurrence of the non-empty, star-free piece in
// s and returns the offset just past it.
func findPiece(piece, s string) (int, bool) {
	q := strings.IndexByte(piece, '?')
	if q < 0 {
		i := strings.Index(s, piece)
		if i < 0 {
			return 0, false
		}
		return i + len(piece), true
	}
	lit := piece[:q] // literal run before the first '?', used to skip ahead
	for start := 0; start <= len(s); {
		if lit != "" {
			i := strings.Index(s[start:], lit)
			if i < 0 {
				return 0, false
			}
			start += i
		}
		if n, ok := matchPrefix(piece, s[start:]); ok {
			return start + n, true
		}
		if start == len(s) {
			break
		}
		_, w := utf8.DecodeRuneInString(s[start:])
		start += w
	}
	return 0, false
}
