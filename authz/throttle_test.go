package authz

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"testing"
	"time"
)

func TestThrottlePolicy(t *testing.T) {
	p := throttlePolicy{Window: time.Hour, Free: 5, Base: time.Second, Max: 15 * time.Minute, Cap: 100}
	start := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	now := start.Add(10 * time.Minute)
	tests := []struct {
		n    int
		want time.Duration // from now; -1 means not blocked
	}{
		{1, -1}, {5, -1}, {6, time.Second}, {7, 2 * time.Second}, {10, 16 * time.Second},
		{15, 512 * time.Second}, {16, 15 * time.Minute}, {99, 15 * time.Minute}, {1000000, 50 * time.Minute},
	}
	for _, tc := range tests {
		got := p.blockUntil(tc.n, start, now)
		switch {
		case tc.want < 0 && !got.IsZero():
			t.Errorf("failure %d: blocked until %v, want not blocked", tc.n, got)
		case tc.want >= 0 && !got.Equal(now.Add(tc.want)):
			t.Errorf("failure %d: blocked for %v, want %v", tc.n, got.Sub(now), tc.want)
		}
	}
	if got := p.blockUntil(100, start, now); !got.Equal(start.Add(time.Hour)) {
		t.Errorf("at the cap: blocked until %v, want the window's end %v", got, start.Add(time.Hour))
	}
}

func TestSignInThrottling(t *testing.T) {
	e := newIsolatedEnv(t)
	e.srv.throttle = defaultThrottle
	c := e.newClient(GrantPassword)
	username, _ := e.newUser(testPassword)
	attempt := func(user, pw string) response {
		return e.post("/token", &c, url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}})
	}

	// The free failures are answered as wrong passwords; the next one
	// blocks the account.
	for i := 0; i < accountThrottle.Free+1; i++ {
		if r := attempt(username, "wrong"); r.status != http.StatusBadRequest {
			t.Fatalf("failure %d: status %d %s, want 400", i+1, r.status, r.body)
		}
	}
	r := attempt(username, testPassword)
	if r.status != http.StatusTooManyRequests || r.str(t, "error") != "invalid_grant" {
		t.Fatalf("blocked account with the right password: got %d %s, want 429 invalid_grant", r.status, r.body)
	}
	if secs, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || secs < 1 {
		t.Errorf("Retry-After = %q, want a positive number of seconds", r.header.Get("Retry-After"))
	}

	// An unknown account is throttled the same way, so blocking tells an
	// attacker nothing about which accounts exist.
	for i := 0; i < accountThrottle.Free+1; i++ {
		attempt("nobody-"+username, "wrong")
	}
	if u := attempt("nobody-"+username, "wrong"); u.status != r.status || u.str(t, "error") != r.str(t, "error") {
		t.Errorf("blocked unknown account: got %d %s, want the same as a blocked real one (%d)", u.status, u.body, r.status)
	}

	// Once the block has passed, the right password works and clears the
	// account's count.
	if _, err := rawDB(t, e.dbURL).Exec(t.Context(), `update sign_in_failures set blocked_until = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	if r := attempt(username, testPassword); r.status != http.StatusOK {
		t.Fatalf("after the block: %d %s, want 200", r.status, r.body)
	}
	if r := attempt(username, "wrong"); r.status != http.StatusBadRequest {
		t.Errorf("first failure after a success: %d, want 400 (the count starts over)", r.status)
	}
}

func TestSignInThrottlingByAddress(t *testing.T) {
	e := newIsolatedEnv(t)
	e.srv.throttle = throttlePolicies{account: accountThrottle, address: throttlePolicy{Window: time.Hour, Free: 3, Base: time.Minute, Max: time.Hour, Cap: 10}}
	c := e.newClient(GrantPassword)
	username, _ := e.newUser(testPassword)
	// A source spraying one guess at each of many accounts.
	for i := 0; i < 4; i++ {
		r := e.post("/token", &c, url.Values{"grant_type": {"password"}, "username": {unique("victim")}, "password": {"guess"}})
		if r.status != http.StatusBadRequest {
			t.Fatalf("spray %d: %d %s", i, r.status, r.body)
		}
	}
	r := e.post("/token", &c, url.Values{"grant_type": {"password"}, "username": {username}, "password": {testPassword}})
	if r.status != http.StatusTooManyRequests {
		t.Errorf("sign-in from a spraying address: %d %s, want 429", r.status, r.body)
	}
}

func TestClientAddress(t *testing.T) {
	s := &Server{cfg: Config{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128"),
	}}}
	tests := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"direct client, header ignored", "203.0.113.7:5000", []string{"198.51.100.1"}, "203.0.113.7"},
		{"one trusted proxy", "10.1.2.3:443", []string{"198.51.100.1"}, "198.51.100.1"},
		{"client-supplied hops left of the real one", "10.1.2.3:443", []string{"1.1.1.1, 198.51.100.1"}, "198.51.100.1"},
		{"two trusted proxies", "10.1.2.3:443", []string{"198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"header split over lines", "10.1.2.3:443", []string{"198.51.100.1", "10.9.9.9"}, "198.51.100.1"},
		{"malformed hop stops the walk", "10.1.2.3:443", []string{"198.51.100.1, bogus"}, "10.1.2.3"},
		{"no header from a proxy", "10.1.2.3:443", nil, "10.1.2.3"},
		{"only trusted hops", "10.1.2.3:443", []string{"10.4.4.4"}, "10.4.4.4"},
		{"ipv6 proxy, mapped client", "[::1]:443", []string{"::ffff:198.51.100.1"}, "198.51.100.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/token", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := s.clientAddress(r); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
	plain := &Server{}
	r := httptest.NewRequest(http.MethodPost, "/token", nil)
	r.RemoteAddr, r.Header["X-Forwarded-For"] = "10.1.2.3:443", []string{"198.51.100.1"}
	if got := plain.clientAddress(r); got != "10.1.2.3" {
		t.Errorf("without trusted proxies: got %s, want the peer", got)
	}
}

// TestThrottleStateNeedsClientAuthentication: the 429 of a blocked account
// is only shown to a caller whose client credentials are good.
func TestThrottleStateNeedsClientAuthentication(t *testing.T) {
	e := newIsolatedEnv(t)
	e.srv.throttle = defaultThrottle
	c := e.newClient(GrantPassword)
	username, _ := e.newUser(testPassword)
	for i := 0; i < accountThrottle.Free+1; i++ {
		e.post("/token", &c, url.Values{"grant_type": {"password"}, "username": {username}, "password": {"wrong"}})
	}
	bad := testClient{ID: c.ID, Secret: "wrong"}
	if r := e.post("/token", &bad, url.Values{"grant_type": {"password"}, "username": {username}, "password": {"x"}}); r.status != http.StatusUnauthorized {
		t.Errorf("blocked account, bad client secret: %d %s, want 401", r.status, r.body)
	}
	if r := e.post("/token", &c, url.Values{"grant_type": {"password"}, "username": {username}, "password": {"x"}}); r.status != http.StatusTooManyRequests {
		t.Errorf("blocked account, good client: %d %s, want 429", r.status, r.body)
	}
}
