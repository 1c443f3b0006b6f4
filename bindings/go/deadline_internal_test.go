package fidius

import (
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
	} {
		if got := deadlineMillis(d); got != want {
			t.Errorf("deadlineMillis(%v) = %d, want %d", d, got, want)
		}
	}
}
