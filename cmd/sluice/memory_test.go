package main

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestCgroupLimitFiles(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		content string
		want    int64
		ok      bool
	}{
		{"max\n", 0, false},                 // v2: no limit
		{"9223372036854771712\n", 0, false}, // v1: no limit (MaxInt64 rounded to a page)
		{"536870912\n", 512 << 20, true},    // 512 MiB
		{"", 0, false},                      // unreadable as a number
	} {
		p := filepath.Join(dir, "limit")
		if err := os.WriteFile(p, []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, ok := readCgroupLimit(p); got != c.want || ok != c.ok {
			t.Errorf("%q: %d, %v; want %d, %v", c.content, got, ok, c.want, c.ok)
		}
	}
	if _, ok := readCgroupLimit(filepath.Join(dir, "missing")); ok {
		t.Error("a missing file is a limit")
	}
}

func TestMemoryFlagsApply(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	log := zerolog.Nop()
	for _, bad := range []memoryFlags{{gcPercent: 0}, {gcPercent: -1}, {gcPercent: 50, limit: -1}, {gcPercent: 50, idle: -time.Second}} {
		if err := bad.apply(context.Background(), true, log); err == nil {
			t.Errorf("%+v was taken", bad)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := (memoryFlags{gcPercent: 30, limit: 1 << 40}).apply(ctx, true, log); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetGCPercent(100); got != 30 {
		t.Errorf("GOGC %d, want 30", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<40 {
		t.Errorf("memory limit %d, want 1 TiB", got)
	}
}

// An idle process with garbage gets its memory back within a period or
// two: the heap's free pages are released to the OS.
func TestIdleMemoryIsReleased(t *testing.T) {
	garbage(64) // 64 MiB, then garbage
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go releaseIdleMemory(ctx, 50*time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		if m.HeapIdle-m.HeapReleased < 16<<20 && m.HeapAlloc < 32<<20 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still held after 5 s: heap alloc %d MiB, idle not released %d MiB", m.HeapAlloc>>20, (m.HeapIdle-m.HeapReleased)>>20)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var sink [][]byte

//go:noinline
func garbage(mib int) {
	for range mib {
		sink = append(sink, make([]byte, 1<<20))
	}
	sink = nil
}
