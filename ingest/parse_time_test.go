package ingest

import (
	"math"
	"reflect"
	"testing"
	"time"
)

// TestDateUTC holds dateUTC to time.Date on every day of a leap-year table
// (February 29 included, which rolls over in common years) across years
// that cover the century rules, at times of day that vary.
func TestDateUTC(t *testing.T) {
	years := []int{0, 1, 4, 99, 100, 400, 1582, 1900, 1970, 1999, 2000, 2024, 2025, 2026, 2100, 2400, 9998, 9999, 10000, -1}
	k := 0
	for _, y := range years {
		for mo := 1; mo <= 12; mo++ {
			for d := 1; d <= daysIn[mo-1]; d++ {
				k++
				c := clock{mo, d, k % 24, k % 60, (k * 7) % 60, k * 1000 % 1e9}
				got := dateUTC(y, c)
				want := time.Date(y, time.Month(mo), d, c.hour, c.min, c.sec, c.nsec, time.UTC)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("dateUTC(%d, %+v) = %v, want %v", y, c, got, want)
				}
			}
		}
	}
}

// TestYearUTC holds yearUTC to time.Time.Year around every new year from
// 1960 to 2500 and at the ends of the range it computes itself.
func TestYearUTC(t *testing.T) {
	check := func(tm time.Time) {
		if got, want := yearUTC(tm), tm.UTC().Year(); got != want {
			t.Fatalf("yearUTC(%v) = %d, want %d", tm, got, want)
		}
	}
	for y := 1960; y <= 2500; y++ {
		ny := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
		check(ny)
		check(ny.Add(-time.Nanosecond))
		check(ny.Add(59 * 24 * time.Hour)) // March 1 or February 29
		check(ny.In(time.FixedZone("", -3600)))
	}
	for _, sec := range []int64{0, -1, 253402300799, 253402300800, math.MaxInt64 / 2, math.MinInt64 / 2} {
		check(time.Unix(sec, 0))
	}
	check(time.Time{})
}
