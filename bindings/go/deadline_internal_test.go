package fidius

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestDeadlineMillis(t *testing.T) {
	for d, want := range map[time.Duration]uint64{
		0:                       0, // none
		NoDeadline:              0,
		-time.Second:            0,
		time.Nanosecond:         1, // rounds up: a tiny deadline is not "none"
		time.Millisecond:        1,
		1500 * time.Microsecond: 2,
		200 * time.Millisecond:  200,
		time.Minute:             60000,
		math.MaxInt64:           uint64(math.MaxInt64/time.Millisecond) + 1, // no overflow
	} {
		if got := deadlineMillis(d); got != want {
			t.Errorf("deadlineMillis(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestCPUSecondsAndWindowMillis(t *testing.T) {
	for d, want := range map[time.Duration]uint64{
		0:                       0, // none
		time.Nanosecond:         1, // rounds up: a tiny limit is not "none"
		500 * time.Millisecond:  1,
		time.Second:             1,
		1500 * time.Millisecond: 2,
		time.Minute:             60,
		math.MaxInt64:           uint64(math.MaxInt64/time.Second) + 1,
	} {
		if got, err := cpuSeconds(d); err != nil || got != want {
			t.Errorf("cpuSeconds(%v) = %d, %v; want %d", d, got, err, want)
		}
	}
	if _, err := cpuSeconds(-time.Second); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("cpuSeconds(-1s): %v, want INVALID_ARGUMENT", err)
	}

	for d, want := range map[time.Duration]uint64{0: 0, time.Microsecond: 1, time.Minute: 60000} {
		if got, err := windowMillis(d); err != nil || got != want {
			t.Errorf("windowMillis(%v) = %d, %v; want %d", d, got, err, want)
		}
	}
	if _, err := windowMillis(NoDeadline); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("windowMillis(-1ns): %v, want INVALID_ARGUMENT", err)
	}
}
