package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// curlCommand is the password-grant curl line printed by seedDemo, taken
// apart.
type curlCommand struct {
	clientID, secret string
	form             url.Values
	url              string
}

// shellWords splits a command line the way a POSIX shell would, for the
// subset seedDemo prints: words separated by spaces, single quotes.
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range line {
		switch {
		case r == '\'':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// parseDemoCurl finds the password-grant curl command in seedDemo's output
// and reads its credentials, form fields and URL.
func parseDemoCurl(t *testing.T, out string) curlCommand {
	t.Helper()
	var line string
	for l := range strings.Lines(out) {
		if strings.Contains(l, "curl ") && strings.Contains(l, "grant_type=password") {
			line = strings.TrimSpace(l)
			break
		}
	}
	if line == "" {
		t.Fatalf("no password-grant curl command in output:\n%s", out)
	}
	words := shellWords(line)
	c := curlCommand{form: url.Values{}}
	for i := 1; i < len(words); i++ {
		switch w := words[i]; {
		case w == "-s":
		case (w == "-u" || w == "-d") && i+1 < len(words):
			i++
			k, v, ok := strings.Cut(words[i], map[string]string{"-u": ":", "-d": "="}[w])
			if !ok {
				t.Fatalf("curl argument %q of %s is malformed in %q", words[i], w, line)
			}
			if w == "-u" {
				c.clientID, c.secret = k, v
			} else {
				c.form.Add(k, v)
			}
		case strings.HasPrefix(w, "http"):
			c.url = w
		default:
			t.Fatalf("unexpected curl argument %q in %q", w, line)
		}
	}
	if c.clientID == "" || c.secret == "" || c.url == "" {
		t.Fatalf("curl command lacks credentials or URL: %q", line)
	}
	return c
}

// post sends the curl command's request to the same path on baseURL, as
// curl -u sends the credentials: raw, not form-encoded.
func (c curlCommand) post(t *testing.T, baseURL string) tokenResponse {
	t.Helper()
	u, err := url.Parse(c.url)
	if err != nil {
		t.Fatalf("parse curl URL %q: %v", c.url, err)
	}
	return postForm(t, baseURL+u.Path, c.clientID, c.secret, c.form)
}

func TestSeedDemo(t *testing.T) {
	t.Parallel()
	var stdout bytes.Buffer
	e := &env{
		// A fixed secret, as an ephemeral one would make newServer drop
		// the package database's signing keys, which other tests use.
		getenv: func(k string) string { return baseEnv()[k] },
		stdin:  strings.NewReader(""),
		stdout: &stdout,
		stderr: &bytes.Buffer{},
	}
	o := newOptions("serve", e)
	o.serverFlags()
	if err := o.parse([]string{"--dev", "--addr", "127.0.0.1:18080"}); err != nil {
		t.Fatalf("parse: %v", err)
	}
	srv, store, _, err := newServer(t.Context(), o)
	if err != nil {
		t.Fatalf("newServer: %v", err)
	}
	t.Cleanup(store.Close)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)

	if err := seedDemo(t.Context(), srv, o, e); err != nil {
		t.Fatalf("first seedDemo: %v", err)
	}
	first := parseDemoCurl(t, stdout.String())
	if want := "http://localhost:18080/token"; first.url != want {
		t.Errorf("curl URL: got %q, want %q", first.url, want)
	}
	assertStrongSecret(t, first.secret)
	assertToken(t, first.post(t, hs.URL))

	stdout.Reset()
	if err := seedDemo(t.Context(), srv, o, e); err != nil {
		t.Fatalf("second seedDemo: %v", err)
	}
	second := parseDemoCurl(t, stdout.String())
	if second.clientID != first.clientID {
		t.Errorf("client ID changed between runs: got %q, want %q", second.clientID, first.clientID)
	}
	if second.secret == first.secret {
		t.Fatal("second seedDemo printed the same secret, want a rotated one")
	}
	assertToken(t, second.post(t, hs.URL))

	old := first.post(t, hs.URL)
	if old.status != http.StatusUnauthorized || old.body["error"] != "invalid_client" {
		t.Errorf("old demo secret: got %d %v, want 401 invalid_client", old.status, old.body["error"])
	}
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("close listener: %v", err)
	}
	return addr
}

func TestServeStartsAndStops(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	base := "http://" + addr
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	done := make(chan result, 1)
	go func() {
		done <- runCLIContext(ctx, t, baseEnv(), "", "serve", "--addr", addr, "--issuer", base)
	}()

	// Poll until the server answers, the command exits early, or a generous
	// deadline passes; the deadline only bounds a broken run.
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /healthz: status %d, want 200", resp.StatusCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not answer on %s: %v", addr, err)
		}
		select {
		case r := <-done:
			t.Fatalf("serve exited before answering: code %d, stderr:\n%s", r.code, r.stderr)
		case <-tick.C:
		}
	}

	resp, err := client.Get(base + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatalf("GET metadata: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET metadata: status %d, want 200", resp.StatusCode)
	}

	cancel()
	r := <-done
	if r.code != 0 {
		t.Errorf("serve after cancel: exit code %d, want 0; stderr:\n%s", r.code, r.stderr)
	}
	if _, err := client.Get(base + "/healthz"); err == nil {
		t.Error("server still answers after serve returned")
	}
}
