package localcloud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ErrNotRunning means no local cloud serves the directory.
var ErrNotRunning = errors.New("no local cloud is running")

// Running returns the Info of the cloud serving dir, after checking that
// its process is alive and answers; ErrNotRunning otherwise.
func Running(ctx context.Context, dir string) (*Info, error) {
	data, err := os.ReadFile(filepath.Join(dir, infoFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s (start one with acco local up)", ErrNotRunning, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, infoFile), err)
	}
	var info Info
	if err := json.Unmarshal(data, &info); err != nil {
		return nil, fmt.Errorf("decode %s: %w", filepath.Join(dir, infoFile), err)
	}
	if info.PID <= 0 || syscall.Kill(info.PID, 0) != nil {
		return nil, fmt.Errorf("%w in %s: process %d is gone (start one with acco local up)", ErrNotRunning, dir, info.PID)
	}
	if _, err := fetchStatus(ctx, info.APIURL); err != nil {
		return nil, fmt.Errorf("%w in %s: process %d does not answer: %v", ErrNotRunning, dir, info.PID, err)
	}
	return &info, nil
}

// Status is what `acco local status` reports.
type Status struct {
	Info
	Counts map[string]int `json:"counts"`
}

// GetStatus reports on the cloud serving dir.
func GetStatus(ctx context.Context, dir string) (*Status, error) {
	info, err := Running(ctx, dir)
	if err != nil {
		return nil, err
	}
	st, err := fetchStatus(ctx, info.APIURL)
	if err != nil {
		return nil, err
	}
	return &Status{Info: *info, Counts: st.Counts}, nil
}

func fetchStatus(ctx context.Context, apiURL string) (*status, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiURL+"/localcloud/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status endpoint answered %s", resp.Status)
	}
	var st status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("decode status: %w", err)
	}
	return &st, nil
}

// Up starts a local cloud in the background by running exe with args (the
// `acco local serve` command line) and waits until it answers. When one is
// already running in the directory it returns it and started=false.
func Up(ctx context.Context, dir, exe string, args []string) (info *Info, started bool, err error) {
	if info, err := Running(ctx, dir); err == nil {
		return info, false, nil
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, false, fmt.Errorf("create %s: %w", dir, err)
	}
	logPath := filepath.Join(dir, serverLogFile)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("open %s: %w", logPath, err)
	}
	defer logf.Close()
	_ = os.Remove(filepath.Join(dir, infoFile))
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, false, fmt.Errorf("start %s: %w", exe, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return nil, false, ctx.Err()
		case err := <-exited:
			return nil, false, fmt.Errorf("local cloud exited during start (%v):\n%s", err, tail(logPath, 20))
		case <-deadline.C:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return nil, false, fmt.Errorf("local cloud did not answer within 60s:\n%s", tail(logPath, 20))
		case <-tick.C:
			if info, err := Running(ctx, dir); err == nil && info.PID == cmd.Process.Pid {
				return info, true, nil
			}
		}
	}
}

// Down stops the cloud serving dir and waits for it to exit. It reports
// false when none was running.
func Down(ctx context.Context, dir string) (bool, error) {
	data, err := os.ReadFile(filepath.Join(dir, infoFile))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var info Info
	if err := json.Unmarshal(data, &info); err != nil || info.PID <= 0 {
		return false, fmt.Errorf("decode %s: %v", filepath.Join(dir, infoFile), err)
	}
	if syscall.Kill(info.PID, 0) != nil {
		_ = os.Remove(filepath.Join(dir, infoFile))
		return false, nil
	}
	if err := syscall.Kill(info.PID, syscall.SIGTERM); err != nil {
		return false, fmt.Errorf("stop local cloud (pid %d): %w", info.PID, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(info.PID, 0) != nil {
			return true, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	_ = syscall.Kill(info.PID, syscall.SIGKILL)
	return true, fmt.Errorf("local cloud (pid %d) did not stop within 30s and was killed", info.PID)
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.TrimSpace([]byte(strings.Join(lines, "\n"))))
}
