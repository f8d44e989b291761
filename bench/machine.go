package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// machine describes where the numbers came from.
type machine struct {
	cpu        string
	cores      int
	gomaxprocs int
	goVersion  string
	redis      string
	os         string
}

func describeMachine(ctx context.Context, rdb redis.UniversalClient) machine {
	m := machine{cores: runtime.NumCPU(), gomaxprocs: runtime.GOMAXPROCS(0), goVersion: runtime.Version(),
		os: runtime.GOOS + "/" + runtime.GOARCH, cpu: "unknown CPU"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if s, err := info(ctx, rdb, "server"); err == nil {
		m.redis = "redis-server " + s["redis_version"]
	}
	if s, err := info(ctx, rdb, "memory"); err == nil && s["mem_allocator"] != "" {
		m.redis += " (" + s["mem_allocator"] + ")"
	}
	return m
}

func (m machine) String() string {
	return fmt.Sprintf("%s, %d cores (GOMAXPROCS %d), %s, %s, %s", m.cpu, m.cores, m.gomaxprocs, m.os, m.goVersion, m.redis)
}

// rssBytes is the resident set size of a process (/proc/<pid>/status VmRSS),
// or -1 where /proc is not available.
func rssBytes(pid int) int64 {
	path := "/proc/self/status"
	if pid > 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return -1
}

func mib(b int64) string {
	if b < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

// loadAverage is the 1-minute load average (/proc/loadavg): other work on
// the machine shows here, and in the numbers.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "n/a"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "n/a"
	}
	return f[0]
}
