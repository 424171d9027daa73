package authz

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authz/authz/storage"
)

// ErrKeysSealed reports stored signing keys that the server secret cannot
// unseal, which happens when the secret was changed.
var ErrKeysSealed = errors.New("authz: signing keys cannot be unsealed with this server secret")

// Key ring timing. A replica reloads the ring at least every keyReloadEvery,
// and the JWKS may be cached by resource servers for jwksMaxAge; a new key
// must be published for longer than both before it signs, so that every
// replica and every verifier knows it first. DefaultRotationLead leaves that
// margin.
const (
	keyReloadEvery      = 30 * time.Second
	jwksMaxAge          = 5 * time.Minute
	DefaultRotationLead = 15 * time.Minute
	// keyMissReloadEvery limits reloads triggered by tokens naming an
	// unknown kid, so forged tokens cannot turn into database load.
	keyMissReloadEvery = time.Second
	// clockLeeway keeps a retired key published a little past the expiry of
	// its last token, for verifiers whose clocks run behind.
	clockLeeway = time.Minute
)

// signingKey is one unsealed key of the ring.
type signingKey struct {
	kid         string
	alg         string
	method      jwt.SigningMethod
	private     crypto.Signer
	public      crypto.PublicKey
	activatesAt time.Time
	retiredAt   *time.Time
	jwk         json.RawMessage
}

// keySet is an immutable snapshot of the ring.
type keySet struct {
	keys     []*signingKey // newest activation first
	byKID    map[string]*signingKey
	loadedAt time.Time
	jwks     []byte
}

// KeyRing holds the signing keys, loaded from PostgreSQL and unsealed with a
// key derived from the server secret. Every replica loads the same rows, so
// they agree on which key signs and which keys verify. It is safe for
// concurrent use.
type KeyRing struct {
	store     *storage.Store
	aead      cipher.AEAD
	alg       string
	retention time.Duration // how long a retired key stays published
	log       *slog.Logger

	set      atomic.Pointer[keySet]
	reloadMu sync.Mutex
	lastMiss atomic.Int64 // unix nanos of the last reload for an unknown kid
	now      func() time.Time
}

// NewKeyRing returns a ring over store. alg is the algorithm of keys it
// creates; accessTokenLifespan decides how long retired keys stay published.
func NewKeyRing(store *storage.Store, secret []byte, alg string, accessTokenLifespan time.Duration, log *slog.Logger) (*KeyRing, error) {
	block, err := aes.NewCipher(deriveKey(secret, "signing key seal"))
	if err != nil {
		return nil, fmt.Errorf("authz: key seal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("authz: key seal: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &KeyRing{
		store:     store,
		aead:      aead,
		alg:       alg,
		retention: accessTokenLifespan + clockLeeway,
		log:       log,
		now:       time.Now,
	}, nil
}

// Ensure creates a first key when the database has none, then loads the
// ring. A first key signs at once: no token or verifier can know an older
// one.
func (r *KeyRing) Ensure(ctx context.Context) error {
	k, err := r.newKey(r.now())
	if err != nil {
		return err
	}
	added, err := r.store.AddSigningKey(ctx, k, true)
	if err != nil {
		return err
	}
	if added {
		r.log.InfoContext(ctx, "signing key created", "kid", k.KID, "alg", k.Alg)
	}
	return r.Reload(ctx)
}

// Rotate adds a new key that starts signing after lead. Until then it is only
// published, so replicas and resource servers learn it before they meet a
// token it signed. The key it replaces stays published until its last token
// has expired; keys past that are deleted.
func (r *KeyRing) Rotate(ctx context.Context, lead time.Duration) (kid string, activatesAt time.Time, err error) {
	now := r.now()
	k, err := r.newKey(now.Add(lead))
	if err != nil {
		return "", time.Time{}, err
	}
	if _, err := r.store.AddSigningKey(ctx, k, false); err != nil {
		return "", time.Time{}, err
	}
	if _, err := r.store.DeleteSigningKeysRetiredBefore(ctx, now.Add(-r.retention)); err != nil {
		return "", time.Time{}, err
	}
	r.log.InfoContext(ctx, "signing key rotated", "kid", k.KID, "alg", k.Alg, "activates_at", k.ActivatesAt)
	return k.KID, k.ActivatesAt, r.Reload(ctx)
}

// newKey generates a key of the ring's algorithm and seals its private half.
func (r *KeyRing) newKey(activatesAt time.Time) (*storage.SigningKey, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch r.alg {
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		// 2048 bits is the RFC 7518 section 3.3 minimum and what verifiers
		// expect; larger keys cost every token a slower signature.
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("authz: unsupported signing algorithm %q", r.alg)
	}
	if err != nil {
		return nil, fmt.Errorf("authz: generate key: %w", err)
	}
	kid := randomToken(12)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("authz: encode key: %w", err)
	}
	jwk, err := publicJWK(kid, r.alg, priv.Public())
	if err != nil {
		return nil, err
	}
	return &storage.SigningKey{
		KID:         kid,
		Alg:         r.alg,
		PrivateKey:  r.seal(der, kid, r.alg),
		PublicJWK:   jwk,
		ActivatesAt: activatesAt,
	}, nil
}

// seal encrypts a private key with AES-256-GCM. The kid and algorithm are
// authenticated with it, so a sealed key cannot be moved to another row.
func (r *KeyRing) seal(plain []byte, kid, alg string) []byte {
	nonce := make([]byte, r.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("authz: crypto/rand: " + err.Error())
	}
	return r.aead.Seal(nonce, nonce, plain, []byte(kid+"\x00"+alg))
}

func (r *KeyRing) unseal(sealed []byte, kid, alg string) ([]byte, error) {
	n := r.aead.NonceSize()
	if len(sealed) < n {
		return nil, ErrKeysSealed
	}
	plain, err := r.aead.Open(nil, sealed[:n], sealed[n:], []byte(kid+"\x00"+alg))
	if err != nil {
		return nil, ErrKeysSealed
	}
	return plain, nil
}

// Reload reads the keys from the database and swaps in a new snapshot.
func (r *KeyRing) Reload(ctx context.Context) error {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	return r.reloadLocked(ctx)
}

func (r *KeyRing) reloadLocked(ctx context.Context) error {
	rows, err := r.store.SigningKeys(ctx)
	if err != nil {
		return err
	}
	now := r.now()
	set := &keySet{byKID: make(map[string]*signingKey, len(rows)), loadedAt: now}
	for _, row := range rows {
		k, err := r.parseKey(row)
		if err != nil {
			return fmt.Errorf("authz: signing key %s: %w", row.KID, err)
		}
		set.keys = append(set.keys, k)
		set.byKID[k.kid] = k
	}
	set.jwks = r.encodeJWKS(set, now)
	r.set.Store(set)
	return nil
}

func (r *KeyRing) parseKey(row *storage.SigningKey) (*signingKey, error) {
	der, err := r.unseal(row.PrivateKey, row.KID, row.Alg)
	if err != nil {
		return nil, err
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	k := &signingKey{
		kid:         row.KID,
		alg:         row.Alg,
		activatesAt: row.ActivatesAt,
		retiredAt:   row.RetiredAt,
		jwk:         row.PublicJWK,
	}
	switch key := parsed.(type) {
	case *ecdsa.PrivateKey:
		if row.Alg != "ES256" || key.Curve != elliptic.P256() {
			return nil, errors.New("key does not match ES256")
		}
		k.method, k.private, k.public = jwt.SigningMethodES256, key, &key.PublicKey
	case *rsa.PrivateKey:
		if row.Alg != "RS256" {
			return nil, errors.New("key does not match RS256")
		}
		k.method, k.private, k.public = jwt.SigningMethodRS256, key, &key.PublicKey
	default:
		return nil, fmt.Errorf("unsupported key type %T", parsed)
	}
	return k, nil
}

// current returns the snapshot, reloading it when it is older than
// keyReloadEvery. A failed reload keeps serving the old snapshot, logged, so
// a database blip does not stop token issuance.
func (r *KeyRing) current(ctx context.Context) (*keySet, error) {
	set := r.set.Load()
	if set != nil && r.now().Sub(set.loadedAt) < keyReloadEvery {
		return set, nil
	}
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	if s := r.set.Load(); s != nil && r.now().Sub(s.loadedAt) < keyReloadEvery {
		return s, nil // another goroutine reloaded while this one waited
	}
	if err := r.reloadLocked(ctx); err != nil {
		if set == nil {
			return nil, err
		}
		r.log.ErrorContext(ctx, "signing keys reload failed; using cached keys", "err", err)
		return set, nil
	}
	return r.set.Load(), nil
}

// active returns the key that signs now: the most recently activated key
// whose activation time has passed.
func (r *KeyRing) active(ctx context.Context) (*signingKey, error) {
	set, err := r.current(ctx)
	if err != nil {
		return nil, err
	}
	now := r.now()
	for _, k := range set.keys {
		if !k.activatesAt.After(now) {
			return k, nil
		}
	}
	return nil, errors.New("authz: no active signing key")
}

// lookup returns the published key with the given kid. An unknown kid
// triggers a reload, at most once per keyMissReloadEvery, in case another
// replica has just rotated.
func (r *KeyRing) lookup(ctx context.Context, kid string) (*signingKey, bool) {
	set, err := r.current(ctx)
	if err != nil {
		return nil, false
	}
	if k, ok := set.byKID[kid]; ok && r.published(k, r.now()) {
		return k, true
	}
	last := r.lastMiss.Load()
	now := r.now().UnixNano()
	if now-last < int64(keyMissReloadEvery) || !r.lastMiss.CompareAndSwap(last, now) {
		return nil, false
	}
	if err := r.Reload(ctx); err != nil {
		return nil, false
	}
	k, ok := r.set.Load().byKID[kid]
	return k, ok && r.published(k, r.now())
}

// published reports whether tokens signed by k may still be valid at now.
func (r *KeyRing) published(k *signingKey, now time.Time) bool {
	return k.retiredAt == nil || now.Before(k.retiredAt.Add(r.retention))
}

// JWKS returns the JSON Web Key Set (RFC 7517 section 5) of every published
// key: the public halves only.
func (r *KeyRing) JWKS(ctx context.Context) ([]byte, error) {
	set, err := r.current(ctx)
	if err != nil {
		return nil, err
	}
	return set.jwks, nil
}

func (r *KeyRing) encodeJWKS(set *keySet, now time.Time) []byte {
	keys := make([]json.RawMessage, 0, len(set.keys))
	for _, k := range set.keys {
		if r.published(k, now) {
			keys = append(keys, k.jwk)
		}
	}
	b, err := json.Marshal(struct {
		Keys []json.RawMessage `json:"keys"`
	}{keys})
	if err != nil {
		panic("authz: encode jwks: " + err.Error()) // RawMessages were valid JSON when stored
	}
	return b
}

// KeyInfo describes a signing key for operators.
type KeyInfo struct {
	KID         string     `json:"kid"`
	Alg         string     `json:"alg"`
	CreatedAt   time.Time  `json:"created_at"`
	ActivatesAt time.Time  `json:"activates_at"`
	RetiredAt   *time.Time `json:"retired_at,omitempty"`
	State       string     `json:"state"` // pending, active, retired or expired
}

// Keys lists every stored key with its state at the time of the call.
func (r *KeyRing) Keys(ctx context.Context) ([]KeyInfo, error) {
	rows, err := r.store.SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	now := r.now()
	activeSeen := false
	out := make([]KeyInfo, 0, len(rows))
	for _, k := range rows {
		info := KeyInfo{KID: k.KID, Alg: k.Alg, CreatedAt: k.CreatedAt, ActivatesAt: k.ActivatesAt, RetiredAt: k.RetiredAt}
		switch {
		case k.ActivatesAt.After(now):
			info.State = "pending"
		case !activeSeen:
			info.State = "active"
			activeSeen = true
		case k.RetiredAt != nil && !now.Before(k.RetiredAt.Add(r.retention)):
			info.State = "expired"
		default:
			info.State = "retired"
		}
		out = append(out, info)
	}
	return out, nil
}

// publicJWK encodes a public key as a JWK (RFC 7517, RFC 7518 section 6).
func publicJWK(kid, alg string, pub crypto.PublicKey) ([]byte, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	m := map[string]string{"kid": kid, "alg": alg, "use": "sig"}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		// RFC 7518 section 6.2.1.2: coordinates are padded to the curve size.
		ecdh, err := k.ECDH()
		if err != nil {
			return nil, fmt.Errorf("authz: encode jwk: %w", err)
		}
		raw := ecdh.Bytes() // 0x04 || X || Y
		size := (len(raw) - 1) / 2
		m["kty"], m["crv"] = "EC", "P-256"
		m["x"], m["y"] = b64(raw[1:1+size]), b64(raw[1+size:])
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		m["n"] = b64(k.N.Bytes())
		m["e"] = b64(big.NewInt(int64(k.E)).Bytes())
	default:
		return nil, fmt.Errorf("authz: encode jwk: unsupported key type %T", pub)
	}
	return json.Marshal(m)
}
