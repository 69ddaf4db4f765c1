package main

import (
	"runtime"
	"testing"
	"time"
)

// After a burst's garbage is collected, the returner gives the free pages
// back once its interval has passed, and not before.
func TestMemoryReturnerReleasesAfterBurst(t *testing.T) {
	m := newMemoryReturner(time.Hour)
	burst := make([][]byte, 64)
	for i := range burst {
		burst[i] = make([]byte, 1<<20)
	}
	runtime.KeepAlive(burst)
	burst = nil
	runtime.GC()
	if m.maybeRelease(time.Now()) {
		t.Fatal("released before its interval")
	}
	if !m.maybeRelease(time.Now().Add(2 * time.Hour)) {
		t.Fatal("64 MiB freed by a burst was not given back")
	}
	if m.maybeRelease(time.Now().Add(2*time.Hour + time.Second)) {
		t.Fatal("released twice within one interval")
	}
}
