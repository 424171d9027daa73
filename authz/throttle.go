package authz

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// throttlePolicy says how failed sign-ins against one key slow down the
// next attempts. Past Free failures in a window each failure blocks the key
// for Base doubled per further failure, up to Max; at Cap failures the key
// stays blocked until the window ends. Nothing blocks for longer than a
// window, so an attacker can delay a user but never lock them out for good.
type throttlePolicy struct {
	Window time.Duration
	Free   int
	Base   time.Duration
	Max    time.Duration
	Cap    int
}

// throttlePolicies are the policies of a server.
type throttlePolicies struct {
	account, address throttlePolicy
}

var defaultThrottle = throttlePolicies{account: accountThrottle, address: addressThrottle}

var (
	// accountThrottle guards one account against online guessing: a few
	// typos cost nothing, and at most 100 guesses an hour get through
	// (DESIGN.md, security invariant 4).
	accountThrottle = throttlePolicy{Window: time.Hour, Free: 5, Base: time.Second, Max: 15 * time.Minute, Cap: 100}
	// addressThrottle guards against one source spraying many accounts; it
	// is looser, since many users may share an address.
	addressThrottle = throttlePolicy{Window: time.Hour, Free: 50, Base: time.Second, Max: 15 * time.Minute, Cap: 1000}
)

// blockUntil returns until when a key is blocked after its n-th failure in
// a window that started at start; zero means not blocked.
func (p throttlePolicy) blockUntil(n int, start, now time.Time) time.Time {
	if n >= p.Cap {
		return start.Add(p.Window)
	}
	if n <= p.Free {
		return time.Time{}
	}
	exp := n - p.Free - 1
	d := p.Max
	if exp < 30 {
		d = time.Duration(math.Min(float64(p.Base)*math.Pow(2, float64(exp)), float64(p.Max)))
	}
	return now.Add(d)
}

func accountKey(username string) string {
	// Hashed so the table holds no usernames, and attacker-chosen ones
	// cannot bloat it.
	sum := sha256.Sum256([]byte(strings.ToLower(username)))
	return "user:" + hex.EncodeToString(sum[:16])
}

func addressKey(addr string) string { return "ip:" + addr }

// clientAddress is the address failures are counted against. It is the
// peer of the connection, unless that peer is a configured trusted proxy:
// then X-Forwarded-For is read from the right, past every trusted proxy,
// and the first address no trusted proxy vouches for is the client's. The
// header is never believed otherwise, since any client can set it, and the
// part left of the first untrusted hop is the client's own invention.
func (s *Server) clientAddress(r *http.Request) string {
	peer, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		peer = r.RemoteAddr
	}
	if len(s.cfg.TrustedProxies) == 0 {
		return peer
	}
	ip, err := netip.ParseAddr(peer)
	if err != nil || !s.trustedProxy(ip) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed hop: nothing left of it can be believed
		}
		client = a.Unmap().String()
		if !s.trustedProxy(a) {
			break
		}
	}
	return client
}

func (s *Server) trustedProxy(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

type signInAddressKey struct{}

// signInThrottled is returned through fosite when a sign-in is refused
// because its account or address is blocked; the token handler answers 429.
type signInThrottled struct {
	wait time.Duration
}

func (e *signInThrottled) Error() string { return "authz: sign-in throttled" }

// signInBlocked reports how long sign-ins for username from the request's
// address must wait, or zero.
func (s *Server) signInBlocked(ctx context.Context, username, addr string) (time.Duration, error) {
	until, err := s.store.SignInBlockedUntil(ctx, []string{accountKey(username), addressKey(addr)})
	if err != nil || until.IsZero() {
		return 0, err
	}
	return time.Until(until), nil
}

// recordSignInFailure counts a failed sign-in against the account and the
// address. A failure to record is logged, not returned: the sign-in was
// refused either way.
func (s *Server) recordSignInFailure(ctx context.Context, username string) {
	addr, _ := ctx.Value(signInAddressKey{}).(string)
	now := time.Now()
	for _, k := range []struct {
		key    string
		policy throttlePolicy
	}{{accountKey(username), s.throttle.account}, {addressKey(addr), s.throttle.address}} {
		if addr == "" && k.key == addressKey("") {
			continue
		}
		n, start, err := s.store.RecordSignInFailure(ctx, k.key, k.policy.Window)
		if err == nil {
			if until := k.policy.blockUntil(n, start, now); !until.IsZero() {
				err = s.store.BlockSignIn(ctx, k.key, until)
			}
		}
		if err != nil {
			s.log.WarnContext(ctx, "recording a failed sign-in failed", "err", err)
		}
	}
	s.log.InfoContext(ctx, "sign-in failed", "remote_addr", addr)
}

// resetSignInFailures clears the account's counter after a success. The
// address counter stays: one success must not unlock a spraying source.
func (s *Server) resetSignInFailures(ctx context.Context, username string) {
	if err := s.store.ResetSignInFailures(ctx, accountKey(username)); err != nil {
		s.log.WarnContext(ctx, "resetting sign-in failures failed", "err", err)
	}
}
