package main

import (
	"testing"
	"time"
)

func TestHistIndexBounds(t *testing.T) {
	tests := []uint64{0, 1, 31, 32, 33, 63, 64, 1000, 1 << 20, 123456789, 1<<63 - 1, 1<<64 - 1}
	for _, v := range tests {
		i := histIndex(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("histIndex(%d) = %d, out of range", v, i)
		}
		if low := histLow(i); low > v {
			t.Errorf("histLow(histIndex(%d)) = %d, above the value", v, low)
		}
		if i+1 < histBuckets && histLow(i+1) <= v {
			t.Errorf("value %d belongs past bucket %d (next starts at %d)", v, i, histLow(i+1))
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Millisecond)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 500 * time.Millisecond},
		{0.9, 900 * time.Millisecond},
		{0.99, 990 * time.Millisecond},
		{1, 1000 * time.Millisecond},
	}
	for _, tt := range tests {
		got := h.quantile(tt.q)
		if got > tt.want || float64(got) < 0.96*float64(tt.want) {
			t.Errorf("quantile(%v) = %v, want within 4%% below %v", tt.q, got, tt.want)
		}
	}
	var other histogram
	other.record(5 * time.Second)
	h.merge(&other)
	if h.n != 1001 || h.max != 5*time.Second {
		t.Errorf("after merge n=%d max=%v", h.n, h.max)
	}
	var empty histogram
	if empty.quantile(0.5) != 0 {
		t.Error("empty histogram has a quantile")
	}
}
