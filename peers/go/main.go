// Go peers of the braid benchmark suite: the same workloads, written the way a
// Go programmer would (goroutines and channels). Each run prints one number,
// the measurement, on stdout; the braid harness runs it once to warm up and
// then once per measured run.
//
//	braid-peers-go skynet LEAVES        -> milliseconds for the whole tree
//	braid-peers-go pingpong N           -> nanoseconds per hand-off (unbuffered channels)
//	braid-peers-go yield N              -> nanoseconds per switch (runtime.Gosched, GOMAXPROCS=1)
//	braid-peers-go ring TASKS HOPS      -> nanoseconds per hop
//	braid-peers-go latency WINDOW_MS [HOGS PERIOD_MS]
//	                                    -> every wake delay of the sleeper (default: 1 ms beside one hog
//	                                       per GOMAXPROCS), microseconds, one per line
//	braid-peers-go dispersive RATE WINDOW_MS
//	                                    -> per 4 us request: hand-over to completion, due time to
//	                                       completion, generator lateness (us), three per line
package main

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func arg(i int) int64 {
	v, err := strconv.ParseInt(os.Args[i], 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bad argument %q: %v\n", os.Args[i], err)
		os.Exit(2)
	}
	return v
}

func skynet(c chan<- int64, num, size, div int64) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int64, div)
	for i := int64(0); i < div; i++ {
		sub := num + i*(size/div)
		go skynet(rc, sub, size/div, div)
	}
	var sum int64
	for i := int64(0); i < div; i++ {
		sum += <-rc
	}
	c <- sum
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: braid-peers-go skynet|pingpong|yield|ring|latency|dispersive ARGS")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "skynet":
		leaves := arg(2)
		start := time.Now()
		c := make(chan int64)
		go skynet(c, 0, leaves, 10)
		sum := <-c
		if sum != leaves*(leaves-1)/2 {
			fmt.Fprintln(os.Stderr, "wrong sum", sum)
			os.Exit(1)
		}
		fmt.Printf("%.3f\n", float64(time.Since(start).Nanoseconds())/1e6)
	case "pingpong":
		n := arg(2)
		runtime.GOMAXPROCS(1)
		ping, pong := make(chan int64), make(chan int64)
		go func() {
			for v := range ping {
				pong <- v + 1
			}
		}()
		start := time.Now()
		var v int64
		for i := int64(0); i < n; i++ {
			ping <- v
			v = <-pong
		}
		fmt.Printf("%.3f\n", float64(time.Since(start).Nanoseconds())/float64(2*n))
	case "yield":
		n := arg(2)
		runtime.GOMAXPROCS(1)
		var wg sync.WaitGroup
		start := time.Now()
		for k := 0; k < 2; k++ {
			wg.Add(1)
			go func() {
				for i := int64(0); i < n; i++ {
					runtime.Gosched()
				}
				wg.Done()
			}()
		}
		wg.Wait()
		fmt.Printf("%.3f\n", float64(time.Since(start).Nanoseconds())/float64(2*n))
	case "ring":
		tasks, hops := arg(2), arg(3)
		chans := make([]chan int64, tasks)
		for i := range chans {
			chans[i] = make(chan int64, 1)
		}
		var wg sync.WaitGroup
		for i := int64(0); i < tasks; i++ {
			wg.Add(1)
			go func(in, out chan int64) {
				defer wg.Done()
				for t := range in {
					if t == 0 {
						select {
						case out <- 0:
						default:
						}
						return
					}
					out <- t - 1
				}
			}(chans[i], chans[(i+1)%tasks])
		}
		start := time.Now()
		chans[0] <- hops
		wg.Wait()
		fmt.Printf("%.3f\n", float64(time.Since(start).Nanoseconds())/float64(hops))
	case "latency":
		window := time.Duration(arg(2)) * time.Millisecond
		hogs, period := int64(runtime.GOMAXPROCS(0)), time.Millisecond
		if len(os.Args) > 4 {
			hogs, period = arg(3), time.Duration(arg(4))*time.Millisecond
		}
		var stop atomic.Bool
		var wg sync.WaitGroup
		for i := int64(0); i < hogs; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
				}
			}()
		}
		var delays []float64
		end := time.Now().Add(window)
		for time.Now().Before(end) {
			t := time.Now()
			time.Sleep(period)
			d := time.Since(t) - period
			if d < 0 {
				d = 0
			}
			delays = append(delays, float64(d.Nanoseconds())/1e3)
		}
		stop.Store(true)
		wg.Wait()
		for _, d := range delays {
			fmt.Printf("%.3f\n", d)
		}
	case "dispersive":
		dispersive(float64(arg(2)), time.Duration(arg(3))*time.Millisecond)
	default:
		fmt.Fprintln(os.Stderr, "unknown workload", os.Args[1])
		os.Exit(2)
	}
}

// The dispersive workload of braid-bench's dispersive_latency figure: 99.5 %
// of requests compute 4 us, 0.5 % compute 10 ms in 100 us steps with a
// runtime.Gosched between them; exponential inter-arrival times at RATE per
// second (open loop) for the window. A generator goroutine, locked to its
// own thread, hands each request over a channel to a dispatcher that starts
// a goroutine per request, as braid's and tokio's servers do.
type request struct {
	due, sent time.Time
	long      bool
}

func spin(d time.Duration) {
	t := time.Now()
	for time.Since(t) < d {
	}
}

func dispersive(rate float64, window time.Duration) {
	const longEvery = 200
	requests := make(chan request, 1<<16)
	var mu sync.Mutex
	samples := make([][3]float64, 0, int(rate*window.Seconds()*1.5)+1024)
	var wg sync.WaitGroup
	dispatched := make(chan struct{})
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	go func() {
		for r := range requests {
			wg.Add(1)
			go func(r request) {
				defer wg.Done()
				if r.long {
					for i := 0; i < 100; i++ {
						spin(100 * time.Microsecond)
						runtime.Gosched()
					}
					return
				}
				spin(4 * time.Microsecond)
				now := time.Now()
				s := [3]float64{us(now.Sub(r.sent)), us(now.Sub(r.due)), us(r.sent.Sub(r.due))}
				mu.Lock()
				samples = append(samples, s)
				mu.Unlock()
			}(r)
		}
		close(dispatched)
	}()
	go func() {
		runtime.LockOSThread()
		rng := rand.New(rand.NewSource(0xD15))
		start := time.Now()
		end := start.Add(window)
		next := start
		n := 0
		for next.Before(end) {
			now := time.Now()
			for !next.After(now) && next.Before(end) {
				n++
				requests <- request{due: next, sent: time.Now(), long: n%longEvery == 0}
				u := (float64(rng.Int63n(1<<30)) + 1) / float64(1<<30)
				next = next.Add(time.Duration(-math.Log(u) / rate * 1e9))
			}
			if next.Before(end) {
				time.Sleep(time.Until(next))
			}
		}
		close(requests)
	}()
	// Every request was handed over and counted in wg; wait for the ones
	// still running.
	<-dispatched
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for _, s := range samples {
		fmt.Printf("%.3f %.3f %.3f\n", s[0], s[1], s[2])
	}
}
