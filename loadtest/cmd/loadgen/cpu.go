package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat (USER_HZ, 100 on
// every Linux architecture in practice).
const userHZ = 100

// procCPU returns the user+system CPU time a process has used so far.
func procCPU(pid int) (time.Duration, error) {
	name := "/proc/self/stat"
	if pid > 0 {
		name = "/proc/" + strconv.Itoa(pid) + "/stat"
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errProc, err)
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a
// /proc/<pid>/stat line; the command name (field 2) may hold spaces and
// parentheses, so fields are counted after its last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: stat line without a command name", errProc)
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("%w: stat line with %d fields", errProc, len(f)+2)
	}
	var ticks int64
	for _, s := range f[11:13] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("%w: stat field %q", errProc, s)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// cpuMeter measures the CPU time the server processes and loadgen itself
// use between start and stop.
type cpuMeter struct {
	pids       []int
	start      []time.Duration
	self       time.Duration
	serverUsed time.Duration
	perPID     []time.Duration // serverUsed by process, in pids order
	selfUsed   time.Duration
}

func (m *cpuMeter) begin() error {
	m.start = m.start[:0]
	for _, pid := range m.pids {
		c, err := procCPU(pid)
		if err != nil {
			return err
		}
		m.start = append(m.start, c)
	}
	var err error
	m.self, err = procCPU(0)
	return err
}

func (m *cpuMeter) end() error {
	m.serverUsed = 0
	m.perPID = m.perPID[:0]
	for i, pid := range m.pids {
		c, err := procCPU(pid)
		if err != nil {
			return err
		}
		m.serverUsed += c - m.start[i]
		m.perPID = append(m.perPID, c-m.start[i])
	}
	self, err := procCPU(0)
	if err != nil {
		return err
	}
	m.selfUsed = self - m.self
	return nil
}

// cpuUsage is the JSON form of a cpuMeter's measurement.
type cpuUsage struct {
	// ServerS is the CPU time, in seconds, the processes given by -pids used
	// during the measurement (user + system, all threads).
	ServerS float64 `json:"server_cpu_s"`
	// ServerPerPIDS is ServerS by process, in the order of -pids (what a
	// script needs to tell the gateways' CPU from each Redis shard's).
	ServerPerPIDS []float64 `json:"server_cpu_s_per_pid,omitempty"`
	// LoadgenS is loadgen's own CPU time over the same span.
	LoadgenS float64 `json:"loadgen_cpu_s"`
	// ServerUSPerOp is ServerS per delivery (fanout) or per connect
	// (connect), in microseconds: how much server CPU one costs, a figure
	// other work on the machine disturbs far less than a rate.
	ServerUSPerOp float64 `json:"server_cpu_us_per_op,omitempty"`
}

func (m *cpuMeter) usage(ops int64) *cpuUsage {
	if len(m.pids) == 0 {
		return nil
	}
	u := &cpuUsage{ServerS: round3(m.serverUsed.Seconds()), LoadgenS: round3(m.selfUsed.Seconds())}
	for _, d := range m.perPID {
		u.ServerPerPIDS = append(u.ServerPerPIDS, round3(d.Seconds()))
	}
	if ops > 0 {
		u.ServerUSPerOp = round3(float64(m.serverUsed.Microseconds()) / float64(ops))
	}
	return u
}

// parsePIDs reads a comma-separated list of process ids.
func parsePIDs(s string) ([]int, error) {
	var pids []int
	for _, p := range splitList(s) {
		v, err := strconv.Atoi(p)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%w: -pids: %q is not a process id", errUsage, p)
		}
		pids = append(pids, v)
	}
	return pids, nil
}
