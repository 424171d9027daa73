package authz

import (
	"context"
	"sync"
	"time"

	"github.com/authz/authz/storage"
)

// clientCacheTTL bounds how long a cached client is used. Changes are
// announced to every replica at once (storage.WatchClients); the TTL only
// limits the damage of a notification that never arrives.
const clientCacheTTL = time.Minute

// clientCache keeps recently used clients in memory, so authenticating a
// client at /token and /introspect costs no query. It is used only while
// the replica listens for client changes: a deleted client or a rotated
// secret must stop working everywhere at once, and without the
// notifications a replica would not know.
type clientCache struct {
	mu      sync.Mutex
	live    bool
	version uint64 // bumped on every invalidation
	m       map[string]cachedClient
	now     func() time.Time

	// listening and invalidated, when set, are called after the watcher
	// connected and after a change was applied; tests wait on them instead
	// of sleeping.
	listening   func()
	invalidated func(id string)
}

type cachedClient struct {
	c  *storage.Client
	at time.Time
}

func newClientCache() *clientCache {
	return &clientCache{m: make(map[string]cachedClient), now: time.Now}
}

// get returns a cached client or, when it misses, the version to pass to
// put with the client read from the storage.
func (cc *clientCache) get(id string) (*storage.Client, uint64, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if !cc.live {
		return nil, 0, false
	}
	e, ok := cc.m[id]
	if !ok || cc.now().Sub(e.at) > clientCacheTTL {
		return nil, cc.version, false
	}
	return e.c, cc.version, true
}

// put caches c unless something was invalidated since the lookup that read
// it began, in which case c may already be stale.
func (cc *clientCache) put(c *storage.Client, version uint64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if !cc.live || version != cc.version {
		return
	}
	if len(cc.m) >= 10000 {
		clear(cc.m) // bounded: client IDs are chosen by callers
	}
	cc.m[c.ID] = cachedClient{c: c, at: cc.now()}
}

// Listening implements storage.ClientWatcher.
func (cc *clientCache) Listening() {
	cc.mu.Lock()
	clear(cc.m) // changes made while not listening were missed
	cc.version++
	cc.live = true
	hook := cc.listening
	cc.mu.Unlock()
	if hook != nil {
		hook()
	}
}

// Lost implements storage.ClientWatcher.
func (cc *clientCache) Lost(error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	clear(cc.m)
	cc.version++
	cc.live = false
}

// Changed implements storage.ClientWatcher.
func (cc *clientCache) Changed(id string) {
	cc.mu.Lock()
	delete(cc.m, id)
	cc.version++
	hook := cc.invalidated
	cc.mu.Unlock()
	if hook != nil {
		hook(id)
	}
}

// client returns the client with the given ID from the cache or the
// storage.
func (s *Server) client(ctx context.Context, id string) (*storage.Client, error) {
	c, version, ok := s.clients.get(id)
	if ok {
		return c, nil
	}
	c, err := s.store.Client(ctx, id)
	if err != nil {
		return nil, err
	}
	s.clients.put(c, version)
	return c, nil
}

// Run runs the server's background work until ctx ends: listening for
// client changes made by any replica, which enables the client cache, and
// deleting expired token rows every cleanupEvery.
func (s *Server) Run(ctx context.Context, cleanupEvery time.Duration) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = s.store.WatchClients(ctx, loggingWatcher{s.clients, s})
	}()
	go func() {
		defer wg.Done()
		s.RunCleanup(ctx, cleanupEvery)
	}()
	wg.Wait()
}

// loggingWatcher logs the watcher's connection changes.
type loggingWatcher struct {
	*clientCache
	s *Server
}

func (w loggingWatcher) Lost(err error) {
	w.clientCache.Lost(err)
	w.s.log.Warn("lost the client change feed; client cache off until it is back", "err", err)
}
