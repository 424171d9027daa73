package authz

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Password hashing errors. They never carry the password or the stored hash,
// so they are safe to log.
var (
	// ErrUnsupportedHash is returned by Verify when the stored hash uses an
	// algorithm this server does not understand.
	ErrUnsupportedHash = errors.New("authz: unsupported password hash format")

	// ErrMalformedHash is returned by Verify when the stored hash claims a
	// supported algorithm but is corrupted or carries out-of-range parameters.
	ErrMalformedHash = errors.New("authz: malformed password hash")

	// ErrWeakPasswordParams is returned by NewPasswordHasher when the cost
	// parameters are below the accepted minimum or above the accepted maximum.
	ErrWeakPasswordParams = errors.New("authz: password hash parameters out of range")
)

// PasswordParams are the argon2id cost parameters.
type PasswordParams struct {
	Memory      uint32 // KiB; must be >= 19*1024
	Iterations  uint32 // >= 2
	Parallelism uint8  // >= 1
	SaltLen     uint32 // 16
	KeyLen      uint32 // 32
}

// DefaultPasswordParams is the OWASP Password Storage Cheat Sheet minimum for
// argon2id (19 MiB, 2 passes, 1 lane). RFC 9106 recommends far more memory,
// but on a shared authorization server 19 MiB per login keeps the memory bill
// predictable while still defeating GPU cracking. The 16-byte salt and
// 32-byte tag are the RFC 9106 recommended sizes.
var DefaultPasswordParams = PasswordParams{
	Memory:      19 * 1024,
	Iterations:  2,
	Parallelism: 1,
	SaltLen:     16,
	KeyLen:      32,
}

// Minimums accepted by NewPasswordHasher (OWASP argon2id floor, RFC 9106
// salt and tag sizes).
const (
	minMemory     = 19 * 1024
	minIterations = 2
	minSaltLen    = 16
	minKeyLen     = 32
)

// Limits accepted when parsing a stored hash. A stored hash dictates how much
// memory and CPU a verification costs, so a corrupted or attacker-planted
// record must not be able to make the server allocate gigabytes or spin.
const (
	maxMemory      = 1 << 22 // KiB, 4 GiB
	maxIterations  = 100
	minPHCBytes    = 8
	maxPHCBytes    = 1024
	maxPHCLen      = 4096 // comfortably above the longest valid encoding
	maxBcryptCost  = 16   // 2^16 rounds, already seconds of CPU per verify
	argon2Version  = 19   // 0x13, the only version in RFC 9106
	argon2idPrefix = "$argon2id$"
	bcryptHashLen  = 60
)

// b64 is the PHC string encoding: standard alphabet, no padding.
var b64 = base64.RawStdEncoding

// PasswordHasher hashes and verifies user passwords with argon2id and bounds
// how many of those operations run at once.
type PasswordHasher struct {
	params PasswordParams
	// sem bounds concurrent hash/verify calls. Each argon2id call allocates
	// params.Memory KiB, so without a bound a burst of logins (or a login
	// flood) could exhaust the server's memory.
	sem chan struct{}
	// dummy is a current-params argon2id hash that no password matches,
	// verified against for unknown users.
	dummy string
}

// NewPasswordHasher returns a hasher using p. maxConcurrent bounds how many
// Hash, Verify and VerifyDummy calls run at once; a value <= 0 means
// runtime.GOMAXPROCS(0). It returns ErrWeakPasswordParams if p is below the
// OWASP minimum or outside the limits accepted for stored hashes.
func NewPasswordHasher(p PasswordParams, maxConcurrent int) (*PasswordHasher, error) {
	if p.Memory < minMemory || p.Iterations < minIterations || p.Parallelism < 1 ||
		p.SaltLen < minSaltLen || p.KeyLen < minKeyLen {
		return nil, ErrWeakPasswordParams
	}
	return newPasswordHasher(p, maxConcurrent)
}

// newPasswordHasher is NewPasswordHasher without the minimum-cost check, so
// tests can build cheap hashers. It still enforces the parse limits, otherwise
// the hasher could produce hashes it cannot verify.
func newPasswordHasher(p PasswordParams, maxConcurrent int) (*PasswordHasher, error) {
	if p.Memory > maxMemory || p.Memory < 8*uint32(p.Parallelism) ||
		p.Iterations < 1 || p.Iterations > maxIterations || p.Parallelism < 1 ||
		p.SaltLen < minPHCBytes || p.SaltLen > maxPHCBytes ||
		p.KeyLen < minPHCBytes || p.KeyLen > maxPHCBytes {
		return nil, ErrWeakPasswordParams
	}
	if maxConcurrent <= 0 {
		maxConcurrent = runtime.GOMAXPROCS(0)
	}
	// The dummy key is random rather than derived: argon2id's running time
	// does not depend on the stored tag, so verifying against it costs exactly
	// as much as a real hash, and no password can match it.
	dummy := phc{
		memory:      p.Memory,
		iterations:  p.Iterations,
		parallelism: p.Parallelism,
		salt:        make([]byte, p.SaltLen),
		key:         make([]byte, p.KeyLen),
	}
	rand.Read(dummy.salt)
	rand.Read(dummy.key)
	return &PasswordHasher{
		params: p,
		sem:    make(chan struct{}, maxConcurrent),
		dummy:  dummy.String(),
	}, nil
}

// acquire takes a concurrency slot, giving up when ctx is done.
func (h *PasswordHasher) acquire(ctx context.Context) error {
	// Check first so a cancelled request never starts work, even when a slot
	// happens to be free.
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *PasswordHasher) release() { <-h.sem }

// Hash derives an argon2id hash of password with a fresh random salt and
// returns it as a PHC string:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash> (unpadded standard base64).
func (h *PasswordHasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	salt := make([]byte, h.params.SaltLen)
	rand.Read(salt)
	v := phc{
		memory:      h.params.Memory,
		iterations:  h.params.Iterations,
		parallelism: h.params.Parallelism,
		salt:        salt,
		key: argon2.IDKey([]byte(password), salt, h.params.Iterations,
			h.params.Memory, h.params.Parallelism, h.params.KeyLen),
	}
	return v.String(), nil
}

// Verify checks password against encoded, which is either an argon2id PHC
// string or a legacy bcrypt hash ($2a$, $2b$, $2y$). A mismatch returns
// ok=false with a nil error. needsRehash is true when ok and the stored hash
// is bcrypt or argon2id with parameters weaker than h's, so the caller can
// store a fresh Hash while it has the plaintext.
func (h *PasswordHasher) Verify(ctx context.Context, encoded, password string) (ok, needsRehash bool, err error) {
	switch {
	case strings.HasPrefix(encoded, argon2idPrefix):
		return h.verifyArgon2id(ctx, encoded, password)
	case strings.HasPrefix(encoded, "$2a$"), strings.HasPrefix(encoded, "$2b$"), strings.HasPrefix(encoded, "$2y$"):
		return h.verifyBcrypt(ctx, encoded, password)
	default:
		return false, false, ErrUnsupportedHash
	}
}

func (h *PasswordHasher) verifyArgon2id(ctx context.Context, encoded, password string) (ok, needsRehash bool, err error) {
	v, err := parsePHC(encoded)
	if err != nil {
		return false, false, err
	}
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	key := argon2.IDKey([]byte(password), v.salt, v.iterations, v.memory, v.parallelism, uint32(len(v.key)))
	// Constant-time so response timing does not reveal how many leading
	// bytes of the stored tag a guess matched.
	if subtle.ConstantTimeCompare(key, v.key) != 1 {
		return false, false, nil
	}
	return true, v.weakerThan(h.params), nil
}

func (h *PasswordHasher) verifyBcrypt(ctx context.Context, encoded, password string) (ok, needsRehash bool, err error) {
	// Validate the shape and cap the cost before doing any work: the bcrypt
	// package accepts costs up to 31, which a corrupted record could use to
	// pin a CPU for days.
	if len(encoded) != bcryptHashLen || !isDigit(encoded[4]) || !isDigit(encoded[5]) || encoded[6] != '$' {
		return false, false, ErrMalformedHash
	}
	cost, err := bcrypt.Cost([]byte(encoded))
	if err != nil || cost > maxBcryptCost {
		return false, false, ErrMalformedHash
	}
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	// CompareHashAndPassword compares in constant time internally.
	switch err := bcrypt.CompareHashAndPassword([]byte(encoded), []byte(password)); {
	case err == nil:
		// bcrypt is a legacy format: always migrate to argon2id.
		return true, true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, false, nil
	default:
		// Do not wrap: bcrypt errors can echo bytes of the stored hash.
		return false, false, ErrMalformedHash
	}
}

// VerifyDummy verifies password against a current-params argon2id hash that
// nothing matches and always returns false. Call it when the username is
// unknown so the response takes as long as a wrong password for a real user;
// otherwise the timing difference lets attackers enumerate accounts.
func (h *PasswordHasher) VerifyDummy(ctx context.Context, password string) bool {
	// Same code path as a real verification, so the cost matches exactly.
	_, _, _ = h.Verify(ctx, h.dummy, password)
	return false
}

// phc is a parsed argon2id PHC string.
type phc struct {
	memory      uint32 // KiB
	iterations  uint32
	parallelism uint8
	salt        []byte
	key         []byte
}

// String encodes v in the PHC string format.
func (v phc) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2Version, v.memory, v.iterations, v.parallelism,
		b64.EncodeToString(v.salt), b64.EncodeToString(v.key))
}

// weakerThan reports whether v costs an attacker less than hashes made with
// p. Parallelism is ignored: more lanes do not make cracking more expensive.
func (v phc) weakerThan(p PasswordParams) bool {
	return v.memory < p.Memory || v.iterations < p.Iterations ||
		uint32(len(v.salt)) < p.SaltLen || uint32(len(v.key)) < p.KeyLen
}

// parsePHC parses an argon2id PHC string
// ($argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<key>). It accepts only
// the canonical encoding, so String(parsePHC(s)) == s, and rejects parameters
// outside the limits above so a stored hash cannot exhaust memory or CPU.
func parsePHC(s string) (phc, error) {
	var v phc
	if len(s) > maxPHCLen {
		return v, fmt.Errorf("%w: too long", ErrMalformedHash)
	}
	rest, ok := strings.CutPrefix(s, argon2idPrefix)
	if !ok {
		return v, ErrUnsupportedHash
	}
	fields := strings.Split(rest, "$")
	if len(fields) != 4 {
		return v, fmt.Errorf("%w: wrong number of fields", ErrMalformedHash)
	}
	version, ok := strings.CutPrefix(fields[0], "v=")
	if !ok {
		return v, fmt.Errorf("%w: missing version", ErrMalformedHash)
	}
	if n, err := parseDecimal(version); err != nil || n != argon2Version {
		return v, fmt.Errorf("%w: unsupported version", ErrMalformedHash)
	}

	params := strings.Split(fields[1], ",")
	if len(params) != 3 {
		return v, fmt.Errorf("%w: wrong number of parameters", ErrMalformedHash)
	}
	var vals [3]uint32
	for i, name := range [3]string{"m=", "t=", "p="} {
		num, ok := strings.CutPrefix(params[i], name)
		if !ok {
			return v, fmt.Errorf("%w: missing parameter", ErrMalformedHash)
		}
		n, err := parseDecimal(num)
		if err != nil {
			return v, fmt.Errorf("%w: bad parameter", ErrMalformedHash)
		}
		vals[i] = n
	}
	v.memory, v.iterations = vals[0], vals[1]
	switch {
	case vals[2] < 1 || vals[2] > 255:
		return v, fmt.Errorf("%w: parallelism out of range", ErrMalformedHash)
	case v.iterations < 1 || v.iterations > maxIterations:
		return v, fmt.Errorf("%w: iterations out of range", ErrMalformedHash)
	case v.memory < 8*vals[2] || v.memory > maxMemory:
		// RFC 9106 requires at least 8 KiB per lane.
		return v, fmt.Errorf("%w: memory out of range", ErrMalformedHash)
	}
	v.parallelism = uint8(vals[2])

	var err error
	if v.salt, err = decodeB64Field(fields[2]); err != nil {
		return phc{}, fmt.Errorf("%w: bad salt", ErrMalformedHash)
	}
	if v.key, err = decodeB64Field(fields[3]); err != nil {
		return phc{}, fmt.Errorf("%w: bad key", ErrMalformedHash)
	}
	return v, nil
}

// parseDecimal parses a canonical unsigned decimal that fits in 32 bits:
// ASCII digits only, no sign, no leading zeros.
func parseDecimal(s string) (uint32, error) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, strconv.ErrSyntax
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, strconv.ErrSyntax
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}

// decodeB64Field decodes an unpadded standard base64 field holding
// minPHCBytes..maxPHCBytes bytes.
func decodeB64Field(s string) ([]byte, error) {
	if len(s) < b64.EncodedLen(minPHCBytes) || len(s) > b64.EncodedLen(maxPHCBytes) {
		return nil, errors.New("length out of range")
	}
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, err
	}
	// The decoder skips newlines and tolerates non-zero trailing bits;
	// requiring a byte-exact round trip keeps the encoding canonical.
	if b64.EncodeToString(b) != s {
		return nil, errors.New("non-canonical base64")
	}
	return b, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
