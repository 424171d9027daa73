package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The load tool must never send traffic off this machine.
func TestOnlyLoopbackTargets(t *testing.T) {
	tests := map[string]bool{
		"http://127.0.0.1:8080":        true,
		"http://localhost:8080":        true,
		"http://[::1]:8080":            true,
		"https://127.0.0.2":            true,
		"http://10.0.0.1:8080":         false,
		"http://192.168.1.10":          false,
		"http://example.com":           false,
		"http://127.example.com":       false,
		"http://localhost.example.com": false,
		"ftp://127.0.0.1":              false,
		"not a url":                    false,
	}
	for raw, ok := range tests {
		_, err := parseLoopbackURL(raw)
		if (err == nil) != ok {
			t.Errorf("parseLoopbackURL(%q): err = %v, want accepted = %v", raw, err, ok)
		}
	}
}

func TestDriveBoundsAndCounts(t *testing.T) {
	var calls atomic.Int64
	ops := make([]op, 4)
	for i := range ops {
		ops[i] = func(context.Context) error {
			if calls.Add(1)%10 == 0 {
				return errors.New("every tenth fails")
			}
			return nil
		}
	}
	lat, errs, first := drive(context.Background(), ops, time.Minute, 100)
	if len(lat) != 100 || calls.Load() != 100 {
		t.Fatalf("requests = %d (calls %d), want exactly the 100 allowed", len(lat), calls.Load())
	}
	if errs != 10 || first == nil {
		t.Errorf("errors = %d (first %v), want 10", errs, first)
	}
}

func TestReport(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	server := write("server.json", `{"results":[
		{"scenario":"client_credentials","per_second":5000,"p50_ms":5,"p99_ms":20,"server_cpu_cores":0.8,"server_rss_max_mb":40},
		{"scenario":"refresh","per_second":1000,"p50_ms":10,"p99_ms":60,"server_cpu_cores":0.8,"server_rss_max_mb":160}]}`)
	sign := write("sign.json", `{"results":[{"scenario":"sign","per_second":30000}]}`)
	hash := write("hash.json", `{"results":[{"scenario":"argon2id","p50_ms":25}]}`)
	static := write("static.json", `{"results":[{"scenario":"jwks","per_second":20000}]}`)
	var out strings.Builder
	err := cmdReport([]string{"--server", server, "--sign", sign, "--argon2id", hash, "--static", static,
		"--pg-select", "20000", "--pg-insert", "8000", "--cores", "2"}, &out, &out)
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"| client_credentials | 5000 | 5.00 | 20.0 | 0 | 0.80 | 40 | pgbench insert+commit | 8000 | 62% | ≥ 50% | yes |",
		"| refresh | 1000 | 10.00 | 60.0 (≥ 50) | 0 | 0.80 | 160 | pgbench insert+commit | 8000 | 12% | ≥ 25% | no |",
		"Peak server RSS across scenarios: 160 MB (target ≤ 150 MB: no)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}
