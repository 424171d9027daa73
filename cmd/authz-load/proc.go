package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// procSampler records a process's CPU time and peak resident memory from
// /proc while a scenario runs.
type procSampler struct {
	pid      int
	cpuStart float64
	done     chan struct{}
	wg       sync.WaitGroup
	maxRSS   float64 // MB
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times; 100 on every
// Linux architecture Go supports.
const clockTicks = 100

func startProcSampler(pid int) *procSampler {
	p := &procSampler{pid: pid, done: make(chan struct{})}
	p.cpuStart, _ = cpuSeconds(pid)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if rss, err := rssMB(pid); err == nil && rss > p.maxRSS {
				p.maxRSS = rss
			}
			select {
			case <-p.done:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// stop returns the average number of cores the process used over elapsed
// and its peak RSS in MB.
func (p *procSampler) stop(elapsed time.Duration) (cores, rssMB float64) {
	close(p.done)
	p.wg.Wait()
	end, err := cpuSeconds(p.pid)
	if err != nil {
		return 0, p.maxRSS
	}
	return (end - p.cpuStart) / elapsed.Seconds(), p.maxRSS
}

// cpuSeconds reads utime+stime of a process.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces; fields are
	// counted after its closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseFloat(f[11], 64) // field 14 of stat
	stime, err2 := strconv.ParseFloat(f[12], 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return (utime + stime) / clockTicks, nil
}

// rssMB reads VmRSS of a process.
func rssMB(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0, err
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS for process %d", pid)
}
