package auth

import (
	"strings"
	"testing"
	"time"
)

func TestMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, name string
		want          bool
	}{
		// Literals.
		{"", "", true},
		{"", "a", false},
		{"lobby", "lobby", true},
		{"lobby", "lobby2", false},
		{"lobby", "lobb", false},
		{"lobby", "Lobby", false},
		{"a.b+c[d](e)|^$\\", "a.b+c[d](e)|^$\\", true}, // regexp metacharacters are literal
		{"a.c", "abc", false},

		// '*' alone and at the ends.
		{"*", "", true},
		{"*", "anything:at/all", true},
		{"**", "", true},
		{"***", "x", true},
		{"room:*", "room:", true},
		{"room:*", "room:general", true},
		{"room:*", "room:a:b/c", true}, // crosses ':' and '/'
		{"room:*", "room", false},
		{"room:*", "Room:general", false},
		{"*:admin", "team:admin", true},
		{"*:admin", "a/b:c:admin", true},
		{"*:admin", "team:admins", false},
		{"*:admin", ":admin", true},
		{"*-*", "-", true},
		{"*-*", "a-b-c", true},
		{"*-*", "abc", false},

		// Stars in the middle.
		{"a*b", "ab", true},
		{"a*b", "axxb", true},
		{"a*b", "a", false},
		{"a*a", "a", false}, // head and tail cannot share the one 'a'
		{"a*a", "aa", true},
		{"ab*ba", "aba", false},
		{"ab*ba", "abba", true},
		{"a*b*c", "abc", true},
		{"a*b*b", "ab", false}, // a middle piece may not reuse the tail
		{"*b*b", "b", false},
		{"a*a*a", "aa", false},
		{"a*a*a", "aaa", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "acb", false},
		{"a*b*c*d", "abcabcabd", true},
		{"a*b*c*d", "abcabcab", false},
		{"*ab*ab*", "abab", true},
		{"*ab*ab*", "aba", false},
		{"*aab*", "aaab", true}, // leftmost candidate fails, the next one matches
		{"x*ab*ab*y", "xabay", false},
		{"x*ab*ab*y", "xabaaby", true},
		{"x*ab*ab*y", "xababy", true},
		{"user:*:inbox", "user:42:inbox", true},
		{"user:*:inbox", "user::inbox", true},
		{"user:*:inbox", "user:inbox", false},

		// '?'.
		{"?", "", false},
		{"?", "a", true},
		{"?", "ab", false},
		{"team:?", "team:x", true},
		{"team:?", "team:", false},
		{"team:?", "team:xy", false},
		{"??", "é", false},   // one rune, two bytes: one character
		{"?", "é", true},     // '?' takes a whole rune
		{"?", "日", true},     // three bytes
		{"a?c", "a日c", true}, // in the middle
		{"*?", "", false},    // '*' then at least one character
		{"*?", "日", true},    // suffix '?' takes the last rune
		{"?*", "日本", true},   // prefix '?' takes the first rune
		{"*?b*", "日b", true}, // middle '?' piece
		{"*a?c*", "xxabcxx", true},
		{"*a?c*", "xxacxx", false},
		{"*??c*", "abc", true},
		{"*?日?*", "a日b", true},
		{"*?日?*", "日b", false},
		{"?\xff", "a\xff", true}, // an invalid byte is one character and matches itself
		{"?", "\xff", true},
		{"?", "\xff\xfe", false},

		// Unicode literals.
		{"salle:é*", "salle:école", true},
		{"salle:é*", "salle:ecole", false},
		{"*日本", "こんにちは日本", true},
	}
	for _, tt := range tests {
		if got := Match(tt.pattern, tt.name); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
		if got := matchOracle(tt.pattern, tt.name); got != tt.want {
			t.Errorf("oracle(%q, %q) = %v, want %v (test table or oracle wrong)", tt.pattern, tt.name, got, tt.want)
		}
	}
}

// matchOracle is a dynamic-programming glob matcher over runes: obviously
// correct, quadratic, and used only to check Match on valid UTF-8.
func matchOracle(pattern, name string) bool {
	p, s := []rune(pattern), []rune(name)
	// m[j]: pattern prefix p[:i] matches s[:j].
	m := make([]bool, len(s)+1)
	m[0] = true
	for i := range p {
		next := make([]bool, len(s)+1)
		switch p[i] {
		case '*':
			next[0] = m[0]
			for j := 1; j <= len(s); j++ {
				next[j] = m[j] || next[j-1]
			}
		case '?':
			for j := 1; j <= len(s); j++ {
				next[j] = m[j-1]
			}
		default:
			for j := 1; j <= len(s); j++ {
				next[j] = m[j-1] && s[j-1] == p[i]
			}
		}
		m = next
	}
	return m[len(s)]
}

// TestMatchAdversarial runs patterns that make backtracking matchers take
// exponential time. Match must finish them quickly; the bound is generous (a
// backtracking matcher would not finish these in a lifetime).
func TestMatchAdversarial(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 20_000)
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{strings.Repeat("a*", 30) + "b", strings.Repeat("a", 60), false},
		{strings.Repeat("a*", 1000) + "b", long, false},
		{strings.Repeat("*a", 1000) + "*b", long, false},
		{strings.Repeat("*a", 1000) + "*", long, true},
		{"*" + strings.Repeat("a*", 1000) + "b*", long + "b", true},
		{strings.Repeat("*?", 500) + "b", long, false},
		{"*" + strings.Repeat("?", 500) + "b*", long, false},
		{strings.Repeat("*a?", 300) + "*b", long + "b", true},
		{"*" + strings.Repeat("a?", 300) + "c*", long, false},
		{"*" + strings.Repeat("a", 1000) + "b*", long, false},
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, tt := range tests {
		start := time.Now()
		for range 10 {
			if got := Match(tt.pattern, tt.name); got != tt.want {
				t.Fatalf("Match(%.40q…, %d bytes) = %v, want %v", tt.pattern, len(tt.name), got, tt.want)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Match too slow: pattern %.40q… took %v for 10 runs", tt.pattern, time.Since(start))
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	cases := []struct{ name, pattern, room string }{
		{"literal", "room:general", "room:general"},
		{"prefix", "room:*", "room:general"},
		{"middle", "org:*:room:*", "org:acme:room:general"},
		{"question", "team:???:*", "team:abc:chat"},
		{"adversarial", strings.Repeat("a*", 64) + "b", strings.Repeat("a", 1024)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Match(c.pattern, c.room)
			}
		})
	}
}
