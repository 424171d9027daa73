package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// cmdReport reads the results of one perf.sh run and prints each scenario
// beside the machine limit it is judged against, as a Markdown table.
func cmdReport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("authz-load report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "", "JSON results of the server scenarios")
	signFile := fs.String("sign", "", "JSON results of the sign scenario (one worker per core)")
	hashFile := fs.String("argon2id", "", "JSON results of the argon2id scenario (one worker)")
	static := fs.String("static", "", "JSON results of the jwks scenario against the static handler")
	pgSelect := fs.Float64("pg-select", 0, "pgbench select-only (prepared) transactions/s at the same concurrency")
	pgInsert := fs.Float64("pg-insert", 0, "pgbench one-row insert-and-commit transactions/s at the same concurrency")
	cores := fs.Int("cores", 0, "CPU cores of the machine")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *server == "" || *signFile == "" || *hashFile == "" || *static == "" || *pgSelect <= 0 || *pgInsert <= 0 || *cores <= 0 {
		return errors.New("report needs --server, --sign, --argon2id, --static, --pg-select, --pg-insert and --cores")
	}
	srv, err := readResults(*server)
	if err != nil {
		return err
	}
	lim, err := readResults(*signFile)
	if err != nil {
		return err
	}
	hash, err := readResults(*hashFile)
	if err != nil {
		return err
	}
	lim["argon2id"] = hash["argon2id"]
	st, err := readResults(*static)
	if err != nil {
		return err
	}

	hashSeconds := lim["argon2id"].P50ms / 1000
	passwordLimit := 0.0
	if hashSeconds > 0 {
		passwordLimit = float64(*cores) / hashSeconds
	}
	type target struct {
		scenario, limitName string
		limit, ratio        float64
	}
	targets := []target{
		{"client_credentials", "pgbench insert+commit", *pgInsert, 0.50},
		{"refresh", "pgbench insert+commit", *pgInsert, 0.25},
		{"introspect", "pgbench select-only", *pgSelect, 0.30},
		{"password", "cores / one argon2id hash", passwordLimit, 0.80},
		{"jwks", "static Go handler", st["jwks"].PerSecond, 0.50},
		{"verify", "-", 0, 0}, // what a resource server pays; no target
	}

	fmt.Fprintln(stdout, "| scenario | req/s | p50 ms | p99 ms | errors | server CPU | server RSS MB | limit | limit/s | ratio | target | met |")
	fmt.Fprintln(stdout, "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---|")
	for _, t := range targets {
		r, ok := srv[t.scenario]
		if !ok {
			continue
		}
		ratio := 0.0
		if t.limit > 0 {
			ratio = r.PerSecond / t.limit
		}
		want, met := "-", "-"
		if t.ratio > 0 {
			want = fmt.Sprintf("≥ %.0f%%", t.ratio*100)
			met = yesNo(ratio >= t.ratio)
		}
		p99 := fmt.Sprintf("%.1f", r.P99ms)
		if t.scenario != "password" && t.scenario != "verify" && r.P99ms >= 50 {
			p99 += " (≥ 50)"
		}
		cpu, rss := "-", "-"
		if r.ServerCPU > 0 {
			cpu, rss = fmt.Sprintf("%.2f", r.ServerCPU), fmt.Sprintf("%.0f", r.ServerRSSMB)
		}
		limit, pct := "-", "-"
		if t.limit > 0 {
			limit, pct = fmt.Sprintf("%.0f", t.limit), fmt.Sprintf("%.0f%%", ratio*100)
		}
		fmt.Fprintf(stdout, "| %s | %.0f | %.2f | %s | %d | %s | %s | %s | %s | %s | %s | %s |\n",
			t.scenario, r.PerSecond, r.P50ms, p99, r.Errors, cpu, rss, t.limitName, limit, pct, want, met)
	}
	fmt.Fprintf(stdout, "\nMachine limits: pgbench select-only %.0f/s, insert+commit %.0f/s, ES256 signatures %.0f/s, "+
		"one argon2id hash %.1f ms, static JWKS handler %.0f/s, %d cores.\n",
		*pgSelect, *pgInsert, lim["sign"].PerSecond, lim["argon2id"].P50ms, st["jwks"].PerSecond, *cores)
	maxRSS := 0.0
	for _, r := range srv {
		maxRSS = max(maxRSS, r.ServerRSSMB)
	}
	fmt.Fprintf(stdout, "Peak server RSS across scenarios: %.0f MB (target ≤ 150 MB: %s).\n", maxRSS, yesNo(maxRSS <= 150))
	return nil
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

func readResults(path string) (map[string]result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	out := make(map[string]result, len(rep.Results))
	for _, r := range rep.Results {
		out[r.Scenario] = r
	}
	return out, nil
}
