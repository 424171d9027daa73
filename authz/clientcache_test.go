package authz

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/authz/authz/storage"
)

func TestClientCacheVersioning(t *testing.T) {
	cc := newClientCache()
	c := &storage.Client{ID: "c1"}

	cc.put(c, 0)
	if _, _, ok := cc.get("c1"); ok {
		t.Fatal("cache used before the watcher listens")
	}
	cc.Listening()
	_, v, ok := cc.get("c1")
	if ok {
		t.Fatal("hit on an empty cache")
	}
	cc.put(c, v)
	if got, _, ok := cc.get("c1"); !ok || got != c {
		t.Fatal("miss after put")
	}

	// A lookup that began before an invalidation must not store what it
	// read: the client may have changed after it was read.
	_, v, _ = cc.get("c2")
	cc.Changed("c1")
	cc.put(&storage.Client{ID: "c2"}, v)
	if _, _, ok := cc.get("c2"); ok {
		t.Error("stored a client read before an invalidation")
	}
	if _, _, ok := cc.get("c1"); ok {
		t.Error("changed client still cached")
	}

	// Entries expire even if a notification was lost.
	_, v, _ = cc.get("c1")
	cc.put(c, v)
	cc.now = func() time.Time { return time.Now().Add(clientCacheTTL + time.Second) }
	if _, _, ok := cc.get("c1"); ok {
		t.Error("entry used past its TTL")
	}
	cc.now = time.Now

	// Without the change feed the cache is off.
	cc.Lost(errors.New("connection reset"))
	_, v, _ = cc.get("c1")
	cc.put(c, v)
	if _, _, ok := cc.get("c1"); ok {
		t.Error("cache used while the change feed is lost")
	}
}

// runReplica starts a server's background work and waits until it listens
// for client changes.
func runReplica(t *testing.T, e *testEnv) chan string {
	t.Helper()
	listening := make(chan struct{}, 1)
	changed := make(chan string, 16)
	e.srv.clients.listening = func() { listening <- struct{}{} }
	e.srv.clients.invalidated = func(id string) { changed <- id }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.srv.Run(ctx, time.Hour); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-listening:
	case <-time.After(10 * time.Second):
		t.Fatal("the replica did not start listening for client changes")
	}
	return changed
}

func waitChanged(t *testing.T, changed chan string, id string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case got := <-changed:
			if got == id {
				return
			}
		case <-deadline:
			t.Fatalf("no change notification for client %s", id)
		}
	}
}

// TestClientChangesReachEveryReplica: a secret rotated or a client deleted
// through one replica stops working on another at once, although the other
// had the client cached.
func TestClientChangesReachEveryReplica(t *testing.T) {
	a := newIsolatedEnv(t)
	b := newEnvOn(t, a.dbURL, func(c *Config) { c.Issuer = a.srv.cfg.Issuer })
	runReplica(t, a)
	changed := runReplica(t, b)

	c := a.newClient(GrantClientCredentials)
	b.tokenFor(c) // cached on b now
	if _, _, ok := b.srv.clients.get(c.ID); !ok {
		t.Fatal("client not cached on b after use")
	}

	secret, err := a.srv.RotateClientSecret(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	waitChanged(t, changed, c.ID)
	if r := b.post("/token", &c, url.Values{"grant_type": {"client_credentials"}}); r.status != http.StatusUnauthorized {
		t.Errorf("old secret on the other replica: %d, want 401", r.status)
	}
	fresh := testClient{ID: c.ID, Secret: secret}
	b.tokenFor(fresh)

	if err := a.srv.DeleteClient(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	waitChanged(t, changed, c.ID)
	if r := b.post("/token", &fresh, url.Values{"grant_type": {"client_credentials"}}); r.status != http.StatusUnauthorized {
		t.Errorf("deleted client on the other replica: %d, want 401", r.status)
	}
}
