package main

import (
	"math"
	"math/bits"
	"time"
)

// histogram counts latencies in microseconds in log-linear buckets: values
// below 128 µs exactly, above that with 64 buckets per power of two, so a
// reported quantile is within 1/64 (1.6%) of the true value. Values over
// 2^40 µs count as 2^40 µs; the exact maximum is kept aside. The zero value
// is ready; it is not safe for concurrent use (each reader goroutine owns
// one; merge them at the end).
type histogram struct {
	counts [histBuckets]uint64
	total  uint64
	max    uint64
	sum    float64
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits // exact below this
	histHalf    = histSub / 2
	histMaxBits = 40 // values are capped at 2^40 µs (12.7 days)
	histBuckets = (histMaxBits-histSubBits+1)*histHalf + histSub
	histCap     = 1<<histMaxBits - 1
)

// bucketOf maps a value to its bucket index.
func bucketOf(v uint64) int {
	if v < histSub {
		return int(v)
	}
	if v > histCap {
		v = histCap
	}
	g := bits.Len64(v) - histSubBits // >= 1
	return g*histHalf + int(v>>uint(g))
}

// bucketHigh is the largest value that maps to bucket i.
func bucketHigh(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	g := i/histHalf - 1
	m := uint64(i - g*histHalf)
	return (m+1)<<uint(g) - 1
}

// record adds one latency.
func (h *histogram) record(d time.Duration) {
	us := d.Microseconds()
	if us < 0 {
		us = 0 // clock step; count it as the fastest
	}
	v := uint64(us)
	h.counts[bucketOf(v)]++
	h.total++
	h.sum += float64(v)
	if v > h.max {
		h.max = v
	}
}

// merge adds o's counts to h.
func (h *histogram) merge(o *histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	if o.max > h.max {
		h.max = o.max
	}
}

// quantile returns the value at quantile q (0 < q <= 1) in microseconds: the
// upper bound of the bucket holding the ceil(q*total)-th smallest value,
// never above the exact maximum. It is 0 for an empty histogram.
func (h *histogram) quantile(q float64) uint64 {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	if rank < 1 {
		rank = 1
	}
	if rank > h.total {
		rank = h.total
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := bucketHigh(i)
			if v > h.max {
				v = h.max
			}
			return v
		}
	}
	return h.max
}

// mean returns the mean in microseconds.
func (h *histogram) mean() float64 {
	if h.total == 0 {
		return 0
	}
	return h.sum / float64(h.total)
}

// latencySummary is the JSON form of a histogram, in milliseconds.
type latencySummary struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

func (h *histogram) summary() latencySummary {
	ms := func(us uint64) float64 { return round3(float64(us) / 1000) }
	return latencySummary{
		Count: h.total,
		Mean:  round3(h.mean() / 1000),
		P50:   ms(h.quantile(0.50)),
		P90:   ms(h.quantile(0.90)),
		P99:   ms(h.quantile(0.99)),
		P999:  ms(h.quantile(0.999)),
		Max:   ms(h.max),
	}
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }
