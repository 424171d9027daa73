package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

const usage = `authz-load: load generator for an authz server

Usage:
  authz-load run [flags]          drive a server and report each scenario
  authz-load static --addr ADDR   serve a fixed JSON document (the JWKS baseline)
  authz-load report [flags]       compare results with the machine's limits (perf.sh)

Scenarios (--scenarios, comma-separated):
  client_credentials  POST /token, client credentials grant
  password            POST /token, password grant (the server's hash cost)
  refresh             POST /token, refresh grant; each worker follows its own chain
  introspect          POST /introspect of a live access token
  jwks                GET /.well-known/jwks.json
  verify              local verification of an access token against the JWKS,
                      what a resource server pays per request (no server call)
  sign                ES256 signatures per second on this machine (a limit)
  argon2id            one argon2id hash at the server's default cost (a limit)

The client secret and password come from AUTHZ_LOAD_CLIENT_SECRET and
AUTHZ_LOAD_PASSWORD, never from flags.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], getenv, stdout, stderr)
	case "static":
		return cmdStatic(ctx, args[1:], stderr)
	case "report":
		return cmdReport(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

type options struct {
	url          string
	clientID     string
	clientSecret string
	username     string
	password     string
	concurrency  int
	duration     time.Duration
	warmup       time.Duration
	scenarios    string
	serverPID    int
	jsonOut      string
	maxRequests  int
}

func cmdRun(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("authz-load run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "http://localhost:8080", "base URL of the server (loopback only)")
	fs.StringVar(&o.clientID, "client-id", "", "client with the client_credentials, password and refresh_token grants")
	fs.StringVar(&o.username, "username", "", "user for the password and refresh scenarios")
	fs.IntVar(&o.concurrency, "c", 64, "concurrent connections (workers)")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "measured duration of each scenario")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured warm-up before each scenario")
	fs.StringVar(&o.scenarios, "scenarios", "client_credentials,password,refresh,introspect,jwks,verify", "scenarios to run, in order")
	fs.IntVar(&o.serverPID, "server-pid", 0, "PID of the server process, to record its CPU and RSS")
	fs.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.IntVar(&o.maxRequests, "max-requests", 2_000_000, "stop a scenario after this many requests, whatever the duration")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.clientSecret = getenv("AUTHZ_LOAD_CLIENT_SECRET")
	o.password = getenv("AUTHZ_LOAD_PASSWORD")
	if err := o.validate(); err != nil {
		return err
	}

	client := newHTTPClient(o.concurrency)
	var results []result
	for _, name := range strings.Split(o.scenarios, ",") {
		name = strings.TrimSpace(name)
		sc, ok := scenarios[name]
		if !ok {
			return fmt.Errorf("unknown scenario %q", name)
		}
		fmt.Fprintf(stderr, "running %s for %s with %d workers\n", name, o.duration, o.concurrency)
		res, err := runScenario(ctx, &o, client, name, sc)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		results = append(results, res)
		if ctx.Err() != nil {
			break
		}
	}
	printTable(stdout, results)
	if o.jsonOut != "" {
		b, err := json.MarshalIndent(report{Machine: machine(), Results: results}, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// validate keeps the tool on this machine: load is only ever sent to a
// loopback address.
func (o *options) validate() error {
	u, err := parseLoopbackURL(o.url)
	if err != nil {
		return err
	}
	o.url = strings.TrimRight(u, "/")
	if o.concurrency < 1 || o.concurrency > 4096 {
		return errors.New("-c must be between 1 and 4096")
	}
	if o.duration <= 0 || o.duration > time.Hour {
		return errors.New("-d must be between 0 and 1h")
	}
	return nil
}

func parseLoopbackURL(raw string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, raw, nil)
	if err != nil || (req.URL.Scheme != "http" && req.URL.Scheme != "https") {
		return "", fmt.Errorf("--url %q: want an http(s) URL", raw)
	}
	host := req.URL.Hostname()
	if host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return "", fmt.Errorf("--url %q: only loopback addresses may be loaded", raw)
		}
	}
	return raw, nil
}

func newHTTPClient(conns int) *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// op is one request of a scenario; it returns an error when the answer is
// not the expected one.
type op func(ctx context.Context) error

// scenario prepares one op per worker. Setup work (such as getting the
// first refresh token) is not measured.
type scenario struct {
	// server is false for scenarios that measure this machine, not the
	// server; their CPU and RSS columns stay empty.
	server bool
	setup  func(ctx context.Context, o *options, c *http.Client, worker int) (op, error)
}

type result struct {
	Scenario    string  `json:"scenario"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	PerSecond   float64 `json:"per_second"`
	P50ms       float64 `json:"p50_ms"`
	P90ms       float64 `json:"p90_ms"`
	P99ms       float64 `json:"p99_ms"`
	ServerCPU   float64 `json:"server_cpu_cores,omitempty"`
	ServerRSSMB float64 `json:"server_rss_max_mb,omitempty"`
	FirstError  string  `json:"first_error,omitempty"`
}

type report struct {
	Machine map[string]any `json:"machine"`
	Results []result       `json:"results"`
}

func machine() map[string]any {
	host, _ := os.Hostname()
	return map[string]any{"cpus": runtime.NumCPU(), "goos": runtime.GOOS, "goarch": runtime.GOARCH, "go": runtime.Version(), "host": host}
}

func runScenario(ctx context.Context, o *options, c *http.Client, name string, sc scenario) (result, error) {
	ops := make([]op, o.concurrency)
	for i := range ops {
		op, err := sc.setup(ctx, o, c, i)
		if err != nil {
			return result{}, fmt.Errorf("setup: %w", err)
		}
		ops[i] = op
	}
	if o.warmup > 0 {
		drive(ctx, ops, o.warmup, o.maxRequests)
	}

	var proc *procSampler
	if sc.server && o.serverPID > 0 {
		proc = startProcSampler(o.serverPID)
	}
	start := time.Now()
	lat, errs, firstErr := drive(ctx, ops, o.duration, o.maxRequests)
	elapsed := time.Since(start)

	res := result{
		Scenario:    name,
		Concurrency: o.concurrency,
		Seconds:     elapsed.Seconds(),
		Requests:    len(lat),
		Errors:      errs,
		PerSecond:   float64(len(lat)-errs) / elapsed.Seconds(),
	}
	if firstErr != nil {
		res.FirstError = firstErr.Error()
	}
	slices.Sort(lat)
	res.P50ms, res.P90ms, res.P99ms = pct(lat, 0.50), pct(lat, 0.90), pct(lat, 0.99)
	if proc != nil {
		res.ServerCPU, res.ServerRSSMB = proc.stop(elapsed)
	}
	return res, nil
}

// drive runs every op in its own goroutine until d has passed or max
// requests were made, and returns all latencies, the error count and the
// first error.
func drive(ctx context.Context, ops []op, d time.Duration, max int) ([]time.Duration, int, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu       sync.Mutex
		all      []time.Duration
		errs     int
		firstErr error
		wg       sync.WaitGroup
		count    atomic.Int64
	)
	take := func() bool { return count.Add(1) <= int64(max) }
	for _, o := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			var n int
			var first error
			for ctx.Err() == nil && take() {
				t := time.Now()
				err := o(ctx)
				if ctx.Err() != nil {
					break // cut off by the deadline: neither a result nor an error
				}
				lat = append(lat, time.Since(t))
				if err != nil {
					n++
					if first == nil {
						first = err
					}
				}
			}
			mu.Lock()
			all = append(all, lat...)
			errs += n
			if firstErr == nil {
				firstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, errs, firstErr
}

func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return float64(sorted[i].Microseconds()) / 1000
}

func printTable(w io.Writer, rs []result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tconns\treq/s\tp50 ms\tp90 ms\tp99 ms\terrors\tserver cpu\tserver rss MB\t")
	for _, r := range rs {
		cpu, rss := "-", "-"
		if r.ServerCPU > 0 {
			cpu = fmt.Sprintf("%.2f", r.ServerCPU)
			rss = fmt.Sprintf("%.0f", r.ServerRSSMB)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%d\t%s\t%s\t\n",
			r.Scenario, r.Concurrency, r.PerSecond, r.P50ms, r.P90ms, r.P99ms, r.Errors, cpu, rss)
	}
	tw.Flush()
	for _, r := range rs {
		if r.FirstError != "" {
			fmt.Fprintf(w, "%s: first error: %s\n", r.Scenario, r.FirstError)
		}
	}
}

func cmdStatic(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("authz-load static", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8090", "listen address (loopback)")
	body := fs.String("body", `{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"static","alg":"ES256","use":"sig"}]}`, "document to serve")
	if err := fs.Parse(args); err != nil {
		return err
	}
	doc := []byte(*body)
	srv := &http.Server{Addr: *addr, ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(doc)
	})}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return srv.Shutdown(context.Background())
	}
}
