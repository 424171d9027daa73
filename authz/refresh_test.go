package authz

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// refresh uses a refresh token as client c.
func (e *testEnv) refresh(c testClient, rt string) response {
	e.t.Helper()
	return e.post("/token", &c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

// ageRotations moves every rotation of the grant behind rt past the
// benign-race window, as if that much time had passed.
func (e *testEnv) ageRotations(t *testing.T) {
	t.Helper()
	_, err := rawDB(t, e.dbURL).Exec(context.Background(),
		`update oauth_refresh set rotated_at = rotated_at - interval '1 hour' where rotated_at is not null`)
	if err != nil {
		t.Fatalf("age rotations: %v", err)
	}
}

func TestRefreshRotatesAndDetectsReuse(t *testing.T) {
	e := newIsolatedEnv(t)
	c := e.newClient(GrantPassword, GrantRefreshToken)
	username, _ := e.newUser(testPassword)
	first := e.passwordToken(c, username, testPassword, "read")
	rt1 := first.str(t, "refresh_token")

	second := e.refresh(c, rt1)
	if second.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", second.status, second.body)
	}
	rt2, at2 := second.str(t, "refresh_token"), second.str(t, "access_token")
	if rt2 == rt1 {
		t.Fatal("refresh token was not rotated")
	}
	if got := second.str(t, "scope"); got != "read" {
		t.Errorf("refreshed scope = %q, want read", got)
	}
	if e.active(c, first.str(t, "access_token")) {
		t.Error("the access token issued with the rotated refresh token is still active")
	}

	// Replayed at once, the old token fails alone: this is what a retry or
	// a second tab looks like, and it must not sign the user out.
	if r := e.refresh(c, rt1); r.status != http.StatusBadRequest || r.str(t, "error") != "invalid_grant" {
		t.Fatalf("immediate replay: got %d %s, want 400 invalid_grant", r.status, r.body)
	}
	if !e.active(c, at2) || !e.active(c, rt2) {
		t.Fatal("an immediate replay revoked the current tokens")
	}

	// Replayed later, it is a stolen token: the whole family dies
	// (RFC 9700 section 4.14.2).
	e.ageRotations(t)
	if r := e.refresh(c, rt1); r.status != http.StatusBadRequest || r.str(t, "error") != "invalid_grant" {
		t.Fatalf("late replay: got %d %s, want 400 invalid_grant", r.status, r.body)
	}
	if e.active(c, at2) || e.active(c, rt2) {
		t.Error("tokens of the family are still active after a replay")
	}
	if r := e.refresh(c, rt2); r.status == http.StatusOK {
		t.Error("the newest refresh token still works after the family was revoked")
	}
}

func TestRefreshByAnotherClientFails(t *testing.T) {
	e := newTestEnv(t)
	c := e.newClient(GrantPassword, GrantRefreshToken)
	other := e.newClient(GrantPassword, GrantRefreshToken)
	username, _ := e.newUser(testPassword)
	rt := e.passwordToken(c, username, testPassword, "read").str(t, "refresh_token")
	if r := e.refresh(other, rt); r.status != http.StatusBadRequest || r.str(t, "error") != "invalid_grant" {
		t.Errorf("refresh by another client: got %d %s, want 400 invalid_grant", r.status, r.body)
	}
	if r := e.refresh(c, rt); r.status != http.StatusOK {
		t.Errorf("refresh by the owner after another client tried: %d %s", r.status, r.body)
	}
}

// TestConcurrentRefresh sends one refresh token many times at once: exactly
// one request wins, and the tokens it received survive the losers.
func TestConcurrentRefresh(t *testing.T) {
	e := newTestEnv(t)
	c := e.newClient(GrantPassword, GrantRefreshToken)
	username, _ := e.newUser(testPassword)
	const rounds, racers = 30, 8
	for round := range rounds {
		rt := e.passwordToken(c, username, testPassword, "read").str(t, "refresh_token")
		results := make([]response, racers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i] = e.refresh(c, rt)
			}()
		}
		close(start)
		wg.Wait()

		var winner *response
		for i := range results {
			switch results[i].status {
			case http.StatusOK:
				if winner != nil {
					t.Fatalf("round %d: more than one refresh succeeded", round)
				}
				winner = &results[i]
			case http.StatusBadRequest:
			default:
				t.Fatalf("round %d: loser got %d %s, want 400", round, results[i].status, results[i].body)
			}
		}
		if winner == nil {
			t.Fatalf("round %d: no refresh succeeded", round)
		}
		if !e.active(c, winner.str(t, "access_token")) {
			t.Fatalf("round %d: the winner's access token was revoked by a loser", round)
		}
		if r := e.refresh(c, winner.str(t, "refresh_token")); r.status != http.StatusOK {
			t.Fatalf("round %d: the winner's refresh token was revoked by a loser: %d %s", round, r.status, r.body)
		}
	}
}

// TestRefreshFamilyHasAbsoluteEnd checks that rotation does not extend a
// family: every refresh token of a grant expires at the same moment.
func TestRefreshFamilyHasAbsoluteEnd(t *testing.T) {
	const life = 2 * time.Hour
	e := newTestEnv(t, func(c *Config) {
		c.RefreshTokenLifespan = life
		c.RefreshFamilyLifespan = life
	})
	c := e.newClient(GrantPassword, GrantRefreshToken)
	username, _ := e.newUser(testPassword)
	rt1 := e.passwordToken(c, username, testPassword, "read").str(t, "refresh_token")
	signedIn := time.Now() // the family began before this
	exp1 := e.introspect(c, rt1)["exp"].(float64)
	r := e.refresh(c, rt1)
	if r.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	exp2 := e.introspect(c, r.str(t, "refresh_token"))["exp"].(float64)
	if exp2 != exp1 {
		t.Errorf("rotated refresh token expires at %v, want the family end %v", exp2, exp1)
	}
	if end := time.Unix(int64(exp1), 0); end.After(signedIn.Add(life)) {
		t.Errorf("family end %v is later than sign-in + %v", end, life)
	}
}

func TestSessionCapsRefreshExpiry(t *testing.T) {
	end := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		family   time.Time
		set, got time.Time
	}{
		{"before the end", end, end.Add(-time.Hour), end.Add(-time.Hour)},
		{"after the end", end, end.Add(time.Hour), end},
		{"unlimited asks", end, time.Time{}, end},
		{"no family end", time.Time{}, end.Add(time.Hour), end.Add(time.Hour)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Session{FamilyExpiresAt: tc.family}
			s.SetExpiresAt("refresh_token", tc.set)
			if got := s.GetExpiresAt("refresh_token"); !got.Equal(tc.got) {
				t.Errorf("refresh expiry = %v, want %v", got, tc.got)
			}
			s.SetExpiresAt("access_token", tc.set)
			if got := s.GetExpiresAt("access_token"); !got.Equal(tc.set) {
				t.Errorf("access expiry = %v, want it unchanged %v", got, tc.set)
			}
		})
	}
}
