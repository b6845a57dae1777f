package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// procSample is what /proc tells about a process at one moment.
type procSample struct {
	cpu     time.Duration // user + system
	rssKB   int64         // VmRSS
	hwmKB   int64         // VmHWM, the peak RSS
	threads int64
}

// readProc samples process pid.
func readProc(pid int) (procSample, error) {
	var s procSample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name may hold spaces and parentheses: fields start after
	// the last ')'. utime and stime are fields 14 and 15, i.e. the 12th and
	// 13th after the name.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := bytes.Fields(stat[i+1:])
	if len(fields) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	utime, err1 := strconv.ParseInt(string(fields[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(fields[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	s.cpu = time.Duration(utime+stime) * time.Second / clockTicks

	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for line := range bytes.SplitSeq(status, []byte("\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var dst *int64
		switch string(name) {
		case "VmRSS":
			dst = &s.rssKB
		case "VmHWM":
			dst = &s.hwmKB
		case "Threads":
			dst = &s.threads
		default:
			continue
		}
		f := bytes.Fields(value)
		if len(f) > 0 {
			*dst, _ = strconv.ParseInt(string(f[0]), 10, 64)
		}
	}
	return s, nil
}

// selfCPU is the CPU time this process has used, user plus system.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineSample is what /proc tells about the whole machine at one moment.
type machineSample struct {
	busy, total time.Duration // CPU time of all cores, from /proc/stat
	cpuStall    time.Duration // /proc/pressure/cpu "some" total; 0 if missing
}

// readMachine samples the machine; fields it cannot read stay zero.
func readMachine() machineSample {
	var m machineSample
	if stat, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := bytes.Cut(stat, []byte("\n"))
		fields := bytes.Fields(line)
		// cpu user nice system idle iowait irq softirq steal ...
		for i, f := range fields[1:] {
			v, err := strconv.ParseInt(string(f), 10, 64)
			if err != nil || i >= 8 {
				break
			}
			d := time.Duration(v) * time.Second / clockTicks
			m.total += d
			if i != 3 && i != 4 { // idle and iowait
				m.busy += d
			}
		}
	}
	if psi, err := os.ReadFile("/proc/pressure/cpu"); err == nil {
		line, _, _ := bytes.Cut(psi, []byte("\n"))
		if _, total, ok := bytes.Cut(line, []byte("total=")); ok {
			us, _ := strconv.ParseInt(string(bytes.TrimSpace(total)), 10, 64)
			m.cpuStall = time.Duration(us) * time.Microsecond
		}
	}
	return m
}
