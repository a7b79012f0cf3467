// The Go side of colock's benchmark: the uncontended Lock+Unlock cycle of Consul's own Go client
// (github.com/hashicorp/consul/api) against the agent the C++ bench uses, in the ways Go users write it.
//
// Usage: colock-bench-go -addr 127.0.0.1:8500 -key bench/go -cycles 500
//
// One line per variant on stdout, machine-readable for bench/colock_bench.cpp:
//
//	variant=<name> cycles=<n> p50_us=<x> p99_us=<x> max_us=<x> cycles_per_s=<x> cpu_ns=<n> [samples_ns=<a,b,...>]
//
// cpu_ns is this process's user+system CPU time over the measured cycles (getrusage), background
// goroutines included; -raw adds every cycle's duration.
//
// Errors go to stderr and end the program with exit code 1.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "colock-bench-go: "+format+"\n", args...)
	os.Exit(1)
}

var raw = flag.Bool("raw", false, "also print every cycle's duration (samples_ns=...)")

func cpuNs() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// The variant to run alone, or "" for all.
var onlyVariant string

// One measured cycle: acquire and release; the caller's closure does both.
func measure(name string, cycles int, warmup int, cycle func() error) {
	if onlyVariant != "" && onlyVariant != name {
		return
	}
	for i := 0; i < warmup; i++ {
		if err := cycle(); err != nil {
			fail("%s: warm-up: %v", name, err)
		}
	}
	lat := make([]time.Duration, 0, cycles)
	cpu0 := cpuNs()
	begin := time.Now()
	for i := 0; i < cycles; i++ {
		t0 := time.Now()
		if err := cycle(); err != nil {
			fail("%s: cycle %d: %v", name, i, err)
		}
		lat = append(lat, time.Since(t0))
	}
	total := time.Since(begin)
	cpu := cpuNs() - cpu0
	var samples string
	if *raw {
		parts := make([]string, len(lat))
		for i, d := range lat {
			parts[i] = strconv.FormatInt(d.Nanoseconds(), 10)
		}
		samples = " samples_ns=" + strings.Join(parts, ",")
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	pct := func(p float64) float64 {
		i := int(p * float64(len(lat)-1))
		return float64(lat[i].Nanoseconds()) / 1e3
	}
	fmt.Printf("variant=%s cycles=%d p50_us=%.1f p99_us=%.1f max_us=%.1f cycles_per_s=%.1f cpu_ns=%d%s\n",
		name, cycles, pct(0.50), pct(0.99), pct(1.0), float64(cycles)/total.Seconds(), cpu, samples)
}

// Lock then Unlock, failing when Lock returns without the lock.
func lockUnlock(l *api.Lock) error {
	lost, err := l.Lock(nil)
	if err != nil {
		return err
	}
	if lost == nil {
		return fmt.Errorf("Lock returned without the lock")
	}
	return l.Unlock()
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8500", "agent HTTP address host:port")
	key := flag.String("key", "colock-bench/go", "key prefix (one key per variant below it)")
	cycles := flag.Int("cycles", 500, "measured cycles per variant")
	warmup := flag.Int("warmup", 20, "unmeasured cycles per variant first")
	only := flag.String("variant", "", "run only this variant (fresh_lock, reused_session, reused_session_object, fresh_semaphore, semaphore_object)")
	flag.Parse()
	onlyVariant = *only
	switch onlyVariant {
	case "", "fresh_lock", "reused_session", "reused_session_object", "fresh_semaphore", "semaphore_object":
	default:
		fail("unknown variant %q", onlyVariant)
	}

	cfg := api.DefaultConfig()
	cfg.Address = *addr
	c, err := api.NewClient(cfg)
	if err != nil {
		fail("client: %v", err)
	}
	if _, err := c.Status().Leader(); err != nil {
		fail("agent %s: %v", *addr, err)
	}
	apiVersion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/hashicorp/consul/api" {
				apiVersion = d.Version
			}
		}
	}
	fmt.Printf("go=%s api=%s\n", runtime.Version(), apiVersion)

	// How Go users usually write it: a fresh api.Lock per critical section, which creates a session
	// (serfHealth + TTL 15s), reads the key, acquires, releases, and destroys the session (in the
	// background, after Unlock returns).
	fresh := *key + "/fresh"
	measure("fresh_lock", *cycles, *warmup, func() error {
		l, err := c.LockOpts(&api.LockOptions{Key: fresh})
		if err != nil {
			return err
		}
		return lockUnlock(l)
	})

	reused := *key + "/reused"
	same := *key + "/reused_object"
	if onlyVariant == "" || strings.HasPrefix(onlyVariant, "reused_session") {
		reusedSession(c, reused, same, *cycles, *warmup)
	}

	semFresh := *key + "/sem_fresh"
	semSame := *key + "/sem_object"
	if onlyVariant == "" || strings.HasSuffix(onlyVariant, "semaphore") || onlyVariant == "semaphore_object" {
		semaphores(c, semFresh, semSame, *cycles, *warmup)
	}

	for _, k := range []string{fresh, reused, same} {
		c.KV().Delete(k, nil)
	}
	for _, p := range []string{semFresh, semSame} {
		c.KV().DeleteTree(p+"/", nil)
	}
}

// Acquire then Release of a limit-2 api.Semaphore: a new Semaphore (and session) per cycle as Go
// users usually write it, then one Semaphore on a session created once.
func semaphores(c *api.Client, fresh, same string, cycles, warmup int) {
	acquireRelease := func(s *api.Semaphore) error {
		lost, err := s.Acquire(nil)
		if err != nil {
			return err
		}
		if lost == nil {
			return fmt.Errorf("Acquire returned without a slot")
		}
		return s.Release()
	}
	measure("fresh_semaphore", cycles, warmup, func() error {
		s, err := c.SemaphoreOpts(&api.SemaphoreOptions{Prefix: fresh, Limit: 2})
		if err != nil {
			return err
		}
		return acquireRelease(s)
	})

	sid, _, err := c.Session().Create(&api.SessionEntry{Name: "colock bench go semaphore", TTL: "60s",
		Behavior: api.SessionBehaviorDelete}, nil)
	if err != nil {
		fail("session create: %v", err)
	}
	done := make(chan struct{})
	go c.Session().RenewPeriodic("60s", sid, nil, done)
	defer c.Session().Destroy(sid, nil)
	defer close(done)
	s, err := c.SemaphoreOpts(&api.SemaphoreOptions{Prefix: same, Limit: 2, Session: sid})
	if err != nil {
		fail("semaphore: %v", err)
	}
	measure("semaphore_object", cycles, warmup, func() error { return acquireRelease(s) })
}

// A session created once and handed to every lock (the lock then neither renews nor destroys it):
// read, acquire, release per cycle; with a new api.Lock per cycle, then with one api.Lock.
func reusedSession(c *api.Client, reused, same string, cycles, warmup int) {
	sid, _, err := c.Session().Create(&api.SessionEntry{Name: "colock bench go", TTL: "60s",
		Behavior: api.SessionBehaviorRelease}, nil)
	if err != nil {
		fail("session create: %v", err)
	}
	done := make(chan struct{})
	go c.Session().RenewPeriodic("60s", sid, nil, done)
	defer c.Session().Destroy(sid, nil) // runs before the program exits, unlike the renewer's own destroy
	defer close(done)

	measure("reused_session", cycles, warmup, func() error {
		l, err := c.LockOpts(&api.LockOptions{Key: reused, Session: sid})
		if err != nil {
			return err
		}
		return lockUnlock(l)
	})

	// The same, with one api.Lock object locked and unlocked again and again.
	l, err := c.LockOpts(&api.LockOptions{Key: same, Session: sid})
	if err != nil {
		fail("lock: %v", err)
	}
	measure("reused_session_object", cycles, warmup, func() error { return lockUnlock(l) })
}
