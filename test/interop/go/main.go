// colock-interop-peer: Consul's own Go client (github.com/hashicorp/consul/api) as a contender on the
// same lock or semaphore as colock, for the interoperability tests (test/integration/interop_*.cpp).
//
// Usage:
//
//	colock-interop-peer -addr 127.0.0.1:8500 -mode lock -key k -rounds 50 -who go-1 -history h.jsonl
//	colock-interop-peer -addr ... -mode semaphore -prefix p -limit 2 -rounds 50 -who go-1 -history h.jsonl
//
// Each round: Lock (api.Lock) or Acquire (api.Semaphore), append an "enter" line to the history, hold
// for a random time in [-hold-min, -hold-max], append "exit", Unlock or Release, then think for a random
// time in [-think-min, -think-max]. History lines are JSON Lines, each appended with one write() to a
// file opened with O_APPEND, so several processes share one file and its order is the real order:
//
//	{"who":"go-1","ev":"enter","t":<unix ns>,"token":<n>}
//
// "token" (lock mode only, unless -token=false) is the key's ModifyIndex read with ?consistent right
// after Lock returned, which is the ModifyIndex of the acquiring write: a fencing token comparable with
// colock's.
//
// -until-signal: one round whose hold lasts until SIGTERM or SIGINT (then it exits the critical section
// and unlocks as usual), for tests that need a Go holder they control; SIGKILL makes a holder that dies.
//
// On success it prints one summary line on stdout and exits 0:
//
//	who=go-1 mode=lock rounds=50 acquisitions=50 seconds=1.234 wait_ms_max=12
//
// Its sessions are named "colock interop <who>"; it exits only after they are gone.
//
// Exit codes: 1 any error (on stderr), 3 the key or prefix is in use by something else (api.ErrLockConflict
// or api.ErrSemaphoreConflict), printed as "conflict: <error>".
package main

import (
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"
)

var (
	addr        = flag.String("addr", "127.0.0.1:8500", "the Consul agent's HTTP address")
	mode        = flag.String("mode", "lock", "lock (api.Lock) or semaphore (api.Semaphore)")
	key         = flag.String("key", "", "lock mode: the lock's key")
	prefix      = flag.String("prefix", "", "semaphore mode: the semaphore's prefix")
	limit       = flag.Int("limit", 1, "semaphore mode: the number of slots")
	rounds      = flag.Int("rounds", 1, "acquisitions to make")
	who         = flag.String("who", "go", "this contender's name in the history")
	history     = flag.String("history", "", "the history file (JSON Lines, appended); required")
	sessionTTL  = flag.String("ttl", "10s", "SessionTTL of the lock's or semaphore's own sessions")
	lockDelay   = flag.Duration("lock-delay", time.Millisecond, "lock mode: LockDelay of the lock's sessions")
	holdMin     = flag.Duration("hold-min", 2*time.Millisecond, "shortest hold")
	holdMax     = flag.Duration("hold-max", 10*time.Millisecond, "longest hold")
	thinkMin    = flag.Duration("think-min", 0, "shortest pause between rounds")
	thinkMax    = flag.Duration("think-max", 10*time.Millisecond, "longest pause between rounds")
	withToken   = flag.Bool("token", true, "lock mode: write the fencing token into enter lines")
	untilSignal = flag.Bool("until-signal", false, "one round, held until SIGTERM or SIGINT")
	seed        = flag.Int64("seed", 0, "random seed (0: from the clock)")
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "colock-interop-peer: "+format+"\n", args...)
	os.Exit(1)
}

func conflict(err error) {
	if gone := waitSessionsGone(); gone != nil {
		fail("%v (after: %v)", gone, err)
	}
	fmt.Printf("conflict: %v\n", err)
	os.Exit(3)
}

// An acquisition failed: api.Lock and api.Semaphore destroy their session in the background; let them
// finish (best effort) before failing, so a refused peer leaves nothing behind.
func acquireFailed(what string, err error) {
	gone := waitSessionsGone()
	if gone != nil {
		fail("%s: %v (and %v)", what, err, gone)
	}
	fail("%s: %v", what, err)
}

// The client, and the name of the sessions api.Lock and api.Semaphore create for us.
var (
	client      *api.Client
	sessionName string
)

// api.Lock and api.Semaphore destroy their session in a goroutine after Unlock, Release or a failed
// acquire; wait for that before exiting, so a peer leaves no session behind.
func waitSessionsGone() error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		sessions, _, err := client.Session().List(nil)
		if err != nil {
			return fmt.Errorf("listing sessions: %v", err)
		}
		left := 0
		for _, s := range sessions {
			if s.Name == sessionName {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d session(s) named %q still there 5 s after the last release", left, sessionName)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The history file: every line goes out in one write() on an O_APPEND descriptor.
type historyFile struct{ f *os.File }

func openHistory(path string) historyFile {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fail("history: %v", err)
	}
	return historyFile{f}
}

func (h historyFile) append(ev string, token uint64) {
	line := fmt.Sprintf(`{"who":%q,"ev":%q,"t":%d`, *who, ev, time.Now().UnixNano())
	if token != 0 {
		line += fmt.Sprintf(`,"token":%d`, token)
	}
	line += "}\n"
	n, err := h.f.Write([]byte(line))
	if err != nil || n != len(line) {
		fail("history: short write (%d of %d bytes): %v", n, len(line), err)
	}
}

// One acquire/release pair: api.Lock or api.Semaphore behind the same two calls.
type contender interface {
	acquire() (token uint64)
	release()
}

type goLock struct {
	kv *api.KV
	l  *api.Lock
}

func (g goLock) acquire() uint64 {
	lost, err := g.l.Lock(nil)
	if errors.Is(err, api.ErrLockConflict) {
		conflict(err)
	}
	if err != nil {
		acquireFailed("Lock", err)
	}
	if lost == nil {
		fail("Lock returned neither the lock nor an error")
	}
	if !*withToken {
		return 0
	}
	// Our acquiring write is the last one on the key until we release: its ModifyIndex is the token.
	pair, _, err := g.kv.Get(*key, &api.QueryOptions{RequireConsistent: true})
	if err != nil {
		fail("reading the token: %v", err)
	}
	if pair == nil || pair.Session == "" || string(pair.Value) != *who {
		fail("the key is not ours right after Lock returned: %+v", pair)
	}
	return pair.ModifyIndex
}

func (g goLock) release() {
	if err := g.l.Unlock(); err != nil {
		fail("Unlock: %v", err)
	}
}

type goSemaphore struct{ s *api.Semaphore }

func (g goSemaphore) acquire() uint64 {
	lost, err := g.s.Acquire(nil)
	if errors.Is(err, api.ErrSemaphoreConflict) {
		conflict(err)
	}
	if err != nil {
		acquireFailed("Acquire", err)
	}
	if lost == nil {
		fail("Acquire returned neither a slot nor an error")
	}
	return 0
}

func (g goSemaphore) release() {
	if err := g.s.Release(); err != nil {
		fail("Release: %v", err)
	}
}

func randomDuration(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(rng.Int63n(int64(hi-lo)+1))
}

func main() {
	flag.Parse()
	if *history == "" {
		fail("-history is required")
	}
	if *seed == 0 {
		*seed = time.Now().UnixNano()
	}
	rng := rand.New(rand.NewSource(*seed))

	// Installed before the first acquire, so a SIGTERM that arrives while we hold is never fatal.
	signals := make(chan os.Signal, 1)
	if *untilSignal {
		signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
		*rounds = 1
	}

	cfg := api.DefaultConfig()
	cfg.Address = *addr
	var err error
	client, err = api.NewClient(cfg)
	if err != nil {
		fail("client: %v", err)
	}
	sessionName = "colock interop " + *who

	var c contender
	switch *mode {
	case "lock":
		if *key == "" {
			fail("-key is required in lock mode")
		}
		l, err := client.LockOpts(&api.LockOptions{
			Key:         *key,
			Value:       []byte(*who),
			SessionName: sessionName,
			SessionTTL:  *sessionTTL,
			LockDelay:   *lockDelay,
		})
		if err != nil {
			fail("LockOpts: %v", err)
		}
		c = goLock{client.KV(), l}
	case "semaphore":
		if *prefix == "" {
			fail("-prefix is required in semaphore mode")
		}
		s, err := client.SemaphoreOpts(&api.SemaphoreOptions{
			Prefix:      *prefix,
			Limit:       *limit,
			Value:       []byte(*who),
			SessionName: sessionName,
			SessionTTL:  *sessionTTL,
		})
		if err != nil {
			fail("SemaphoreOpts: %v", err)
		}
		c = goSemaphore{s}
	default:
		fail("unknown -mode %q", *mode)
	}

	h := openHistory(*history)
	begin := time.Now()
	var waitMax time.Duration
	for i := 0; i < *rounds; i++ {
		t0 := time.Now()
		token := c.acquire()
		if w := time.Since(t0); w > waitMax {
			waitMax = w
		}
		h.append("enter", token)
		if *untilSignal {
			fmt.Println("holding")
			<-signals
		} else {
			time.Sleep(randomDuration(rng, *holdMin, *holdMax))
		}
		h.append("exit", 0)
		c.release()
		if i+1 < *rounds {
			time.Sleep(randomDuration(rng, *thinkMin, *thinkMax))
		}
	}
	if err := waitSessionsGone(); err != nil {
		fail("%v", err)
	}
	fmt.Printf("who=%s mode=%s rounds=%d acquisitions=%d seconds=%.3f wait_ms_max=%d\n", *who, *mode, *rounds,
		*rounds, time.Since(begin).Seconds(), waitMax.Milliseconds())
}
