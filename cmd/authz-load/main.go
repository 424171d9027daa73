// Command authz-load drives a running authz server over HTTP and reports
// throughput, latency percentiles, errors, and the server's CPU and memory
// for each scenario. Run "authz-load -h" for its flags; docs/performance.md
// describes the method and cmd/authz-load/perf.sh reproduces the report.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "authz-load:", err)
		os.Exit(1)
	}
}
