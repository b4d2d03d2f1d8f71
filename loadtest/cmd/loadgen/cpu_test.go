package main

import (
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	t.Parallel()
	// A real line, with a command name made hard: spaces and parentheses.
	line := "4242 (we (ird) name) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 10 0 12345 2150456000 18856 18446744073709551615\n"
	got, err := parseStatCPU([]byte(line))
	if err != nil || got != 3250*time.Millisecond {
		t.Fatalf("parseStatCPU = %v, %v; want 3.25s", got, err)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 x 11", "1 (x) S 1 2 3 4 5 6 7 8 9 10 -1 11"} {
		if _, err := parseStatCPU([]byte(bad)); !errors.Is(err, errProc) {
			t.Errorf("parseStatCPU(%q) err = %v", bad, err)
		}
	}
}

func TestCPUMeterSelf(t *testing.T) {
	idle := exec.Command("sleep", "30") // a second process that uses no CPU
	if err := idle.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idle.Process.Kill(); _ = idle.Wait() })
	m := cpuMeter{pids: []int{os.Getpid(), idle.Process.Pid}}
	if err := m.begin(); err != nil {
		t.Fatal(err)
	}
	// Burn at least 100ms of CPU (bounded by 10s of wall time on a busy machine).
	start, _ := procCPU(0)
	deadline := time.Now().Add(10 * time.Second)
	for n := 0; time.Now().Before(deadline); n++ {
		if n%100000 == 0 {
			if c, _ := procCPU(0); c-start >= 100*time.Millisecond {
				break
			}
		}
	}
	if err := m.end(); err != nil {
		t.Fatal(err)
	}
	u := m.usage(1000)
	if u.ServerS < 0.09 || u.LoadgenS < 0.09 || u.ServerUSPerOp < 90 {
		t.Fatalf("usage %+v after burning 100ms of CPU", u)
	}
	if len(u.ServerPerPIDS) != 2 || u.ServerPerPIDS[0] < 0.09 || u.ServerPerPIDS[1] > u.ServerPerPIDS[0]/2 {
		t.Fatalf("per process %v after this process burnt 100ms of CPU", u.ServerPerPIDS)
	}
	if (&cpuMeter{}).usage(1) != nil {
		t.Fatal("usage without pids is not nil")
	}
	if _, err := procCPU(1 << 30); !errors.Is(err, errProc) {
		t.Fatalf("missing process: %v", err)
	}
}

func TestParsePIDs(t *testing.T) {
	t.Parallel()
	if p, err := parsePIDs(" 1, 23 ,"); err != nil || len(p) != 2 || p[1] != 23 {
		t.Fatalf("parsePIDs = %v, %v", p, err)
	}
	for _, bad := range []string{"x", "0", "-3", "1,,y"} {
		if _, err := parsePIDs(bad); !errors.Is(err, errUsage) {
			t.Errorf("parsePIDs(%q) err = %v", bad, err)
		}
	}
}
