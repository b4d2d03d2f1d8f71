package streamid

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want ID
		ok   bool
	}{
		{"0-0", ID{}, true},
		{"1795485349246-4", ID{1795485349246, 4}, true},
		{"9007199254740991-18446744073709551615", ID{MaxMillis, ^uint64(0)}, true},
		{"9007199254740992-0", ID{}, false}, // over MaxMillis
		{"01-0", ID{}, false},
		{"1-01", ID{}, false},
		{"-1", ID{}, false},
		{"1-", ID{}, false},
		{"1", ID{}, false},
		{"+1-0", ID{}, false},
		{"1-0-0", ID{}, false},
		{"", ID{}, false},
	} {
		got, err := Parse(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) error %v is not ErrInvalid", tc.in, err)
		}
		if err == nil && got.String() != tc.in {
			t.Errorf("%q round-trips as %q", tc.in, got.String())
		}
	}
}

func TestOrder(t *testing.T) {
	t.Parallel()
	a, b := ID{1, 5}, ID{2, 0}
	if !a.Less(b) || b.Less(a) || a.Less(a) {
		t.Fatal("Less")
	}
	if got := (ID{1, ^uint64(0)}).Next(); got != (ID{2, 0}) {
		t.Fatalf("Next at the seq limit = %v", got)
	}
	if got := a.Next(); got != (ID{1, 6}) || !a.Less(got) {
		t.Fatalf("Next = %v", got)
	}
}
