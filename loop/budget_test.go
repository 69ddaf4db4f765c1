package loop

import (
	"math"
	"testing"
	"time"
)

const flush = 50 * time.Millisecond

func TestShareFitsEveryRoomUnderBudget(t *testing.T) {
	// 10 rooms of 100 at 20 batches a second: 20,000 writes a second.
	sizes := make([]int, 10)
	for i := range sizes {
		sizes[i] = 100
	}
	if c := shareOf(sizes, flush, 20_000); !math.IsInf(c, 1) {
		t.Fatalf("share %v for rooms that fit the budget exactly, want +Inf", c)
	}
	if d := intervalOf(100, math.Inf(1), flush); d != flush {
		t.Fatalf("interval %v, want the flush interval", d)
	}
}

func TestShareStretchesLargestRoomsFirst(t *testing.T) {
	// Small rooms (10 members: 200 writes/s each) keep the flush interval;
	// the one large room takes what is left of the budget.
	sizes := []int{19_000, 10, 10, 10, 10}
	budget := 10_000.0
	c := shareOf(sizes, flush, budget)
	if want := budget - 4*200; math.Abs(c-want) > 1e-6 {
		t.Fatalf("share %v, want %v", c, want)
	}
	if d := intervalOf(10, c, flush); d != flush {
		t.Errorf("small room stretched to %v", d)
	}
	big := intervalOf(19_000, c, flush)
	if want := time.Duration(19_000 / c * float64(time.Second)); big != want {
		t.Errorf("large room interval %v, want %v", big, want)
	}
	// The spend: writes a second at these intervals, within the budget.
	spend := 4*10/flush.Seconds() + 19_000/big.Seconds()
	if spend > budget*1.0001 {
		t.Errorf("spend %v writes/s over the budget %v", spend, budget)
	}
}

func TestShareSplitsEquallyAmongLargeRooms(t *testing.T) {
	// 1,000 rooms of 19 want 380,000 writes/s; 50,000 gives each 50.
	sizes := make([]int, 1000)
	for i := range sizes {
		sizes[i] = 19
	}
	c := shareOf(sizes, flush, 50_000)
	if math.Abs(c-50) > 1e-9 {
		t.Fatalf("share %v, want 50", c)
	}
	if d := intervalOf(19, c, flush); d != 380*time.Millisecond {
		t.Fatalf("interval %v, want 380ms", d)
	}
}

func TestIntervalStopsAtMax(t *testing.T) {
	if d := intervalOf(1_000_000, 1, flush); d != maxBatchInterval {
		t.Fatalf("interval %v, want the cap %v", d, maxBatchInterval)
	}
	if d := intervalOf(1_000_000, 1, 10*time.Second); d != 10*time.Second {
		t.Fatalf("interval %v under a 10s flush interval, want 10s", d)
	}
}

func TestShareOffWithoutBudgetOrFlush(t *testing.T) {
	if c := shareOf([]int{1 << 20}, 0, 1000); !math.IsInf(c, 1) {
		t.Errorf("flush 0: share %v, want +Inf", c)
	}
	if c := shareOf([]int{1 << 20}, flush, 0); !math.IsInf(c, 1) {
		t.Errorf("budget 0: share %v, want +Inf", c)
	}
}
