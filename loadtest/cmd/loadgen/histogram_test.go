package main

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsAreContiguousAndMonotonic(t *testing.T) {
	t.Parallel()
	prev := -1
	for v := uint64(0); v < 1<<20; v++ {
		b := bucketOf(v)
		if b != prev && b != prev+1 {
			t.Fatalf("bucketOf(%d) = %d after %d: buckets skip", v, b, prev)
		}
		if b != prev && prev >= 0 && bucketHigh(prev) != v-1 {
			t.Fatalf("bucketHigh(%d) = %d, want %d", prev, bucketHigh(prev), v-1)
		}
		prev = b
	}
	if b := bucketOf(1 << 62); b >= histBuckets {
		t.Fatalf("bucketOf(huge) = %d, beyond %d buckets", b, histBuckets)
	}
	if b := bucketOf(histCap); b >= histBuckets || bucketHigh(b) != histCap {
		t.Fatalf("bucketOf(cap) = %d (high %d)", b, bucketHigh(b))
	}
}

func TestQuantileAccuracy(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	tests := map[string]func() time.Duration{
		"uniform 0-50ms": func() time.Duration { return time.Duration(r.Int64N(int64(50 * time.Millisecond))) },
		"exponential":    func() time.Duration { return time.Duration(r.ExpFloat64() * float64(3*time.Millisecond)) },
		"bimodal": func() time.Duration {
			if r.IntN(100) < 95 {
				return time.Duration(200+r.IntN(100)) * time.Microsecond
			}
			return time.Duration(40+r.IntN(20)) * time.Millisecond
		},
	}
	for name, gen := range tests {
		t.Run(name, func(t *testing.T) {
			var h histogram
			exact := make([]uint64, 0, 100000)
			for range 100000 {
				d := gen()
				h.record(d)
				exact = append(exact, uint64(d.Microseconds()))
			}
			slices.Sort(exact)
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
				rank := int(float64(len(exact))*q+0.999999) - 1
				want := exact[rank]
				got := h.quantile(q)
				if got < want || float64(got-want) > float64(want)/64+1 {
					t.Errorf("q%.3f = %d µs, exact %d µs (allowed +1/64)", q, got, want)
				}
			}
			if h.quantile(1) != exact[len(exact)-1] || h.max != exact[len(exact)-1] {
				t.Errorf("max = %d / q1 = %d, want %d", h.max, h.quantile(1), exact[len(exact)-1])
			}
		})
	}
}

func TestHistogramMergeAndEdges(t *testing.T) {
	t.Parallel()
	var empty histogram
	if s := empty.summary(); s != (latencySummary{}) {
		t.Fatalf("empty summary = %+v", s)
	}
	var a, b histogram
	for i := range 100 {
		a.record(time.Duration(i) * time.Millisecond)
		b.record(time.Duration(100+i) * time.Millisecond)
	}
	b.record(-time.Second) // a clock step counts as 0
	a.merge(&b)
	a.merge(&empty)
	if a.total != 201 {
		t.Fatalf("total = %d", a.total)
	}
	s := a.summary()
	if s.Max != 199 || s.P50 < 99 || s.P50 > 101.6 || s.Count != 201 {
		t.Fatalf("summary = %+v", s)
	}
	if got := a.quantile(0.0001); got != 0 {
		t.Fatalf("lowest = %d, want 0", got)
	}
	var huge histogram
	huge.record(time.Duration(1 << 62))
	if huge.quantile(0.5) != histCap || huge.max != 1<<62/1000 {
		t.Fatalf("capped value: q50 %d (want the cap %d), max %d", huge.quantile(0.5), uint64(histCap), huge.max)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	b.ReportAllocs()
	var h histogram
	for i := range b.N {
		h.record(time.Duration(i%50000) * time.Microsecond)
	}
}

func BenchmarkParseDelivery(b *testing.B) {
	b.ReportAllocs()
	p, ev := []byte(realDeliveryGateway), []byte(`"m"`)
	for range b.N {
		if _, ok := parseDelivery(p, ev); !ok {
			b.Fatal("not parsed")
		}
	}
}

func BenchmarkAppendPublish(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 256)
	room, ev := appendJSONString(nil, "bench"), appendJSONString(nil, "m")
	for i := range b.N {
		buf = appendPublish(buf[:0], uint64(i), room, ev, int64(i)*1000, int64(i))
	}
}
