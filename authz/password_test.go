package authz

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// cheapParams keep argon2id fast in tests that do not care about cost.
var cheapParams = PasswordParams{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

func newTestHasher(t *testing.T, p PasswordParams, maxConcurrent int) *PasswordHasher {
	t.Helper()
	h, err := newPasswordHasher(p, maxConcurrent)
	if err != nil {
		t.Fatalf("newPasswordHasher(%+v) error = %v", p, err)
	}
	return h
}

// encodeArgon2id builds a PHC string by hand with the given parameters.
func encodeArgon2id(t *testing.T, password string, m, iter uint32, par uint8, saltLen, keyLen int) string {
	t.Helper()
	salt := bytes.Repeat([]byte{0x5a}, saltLen)
	v := phc{
		memory:      m,
		iterations:  iter,
		parallelism: par,
		salt:        salt,
		key:         argon2.IDKey([]byte(password), salt, iter, m, par, uint32(keyLen)),
	}
	return v.String()
}

// fakeArgon2id returns a well-formed PHC string with h's params that no
// password matches; building it costs no hashing.
func fakeArgon2id(h *PasswordHasher) string {
	return phc{
		memory:      h.params.Memory,
		iterations:  h.params.Iterations,
		parallelism: h.params.Parallelism,
		salt:        make([]byte, h.params.SaltLen),
		key:         make([]byte, h.params.KeyLen),
	}.String()
}

func TestNewPasswordHasherParams(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*PasswordParams)
		wantErr bool
	}{
		{"default", func(*PasswordParams) {}, false},
		{"stronger", func(p *PasswordParams) { p.Memory, p.Iterations, p.Parallelism = 64*1024, 3, 4 }, false},
		{"memory below minimum", func(p *PasswordParams) { p.Memory = 19*1024 - 1 }, true},
		{"memory above cap", func(p *PasswordParams) { p.Memory = maxMemory + 1 }, true},
		{"one iteration", func(p *PasswordParams) { p.Iterations = 1 }, true},
		{"too many iterations", func(p *PasswordParams) { p.Iterations = maxIterations + 1 }, true},
		{"zero parallelism", func(p *PasswordParams) { p.Parallelism = 0 }, true},
		{"short salt", func(p *PasswordParams) { p.SaltLen = 8 }, true},
		{"short key", func(p *PasswordParams) { p.KeyLen = 16 }, true},
		{"huge key", func(p *PasswordParams) { p.KeyLen = maxPHCBytes + 1 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultPasswordParams
			tt.mutate(&p)
			h, err := NewPasswordHasher(p, 1)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("NewPasswordHasher(%+v) error = %v, want error %v", p, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrWeakPasswordParams) {
				t.Errorf("error = %v, want ErrWeakPasswordParams", err)
			}
			if err == nil && h == nil {
				t.Errorf("NewPasswordHasher returned nil hasher and nil error")
			}
		})
	}
}

func TestNewPasswordHasherConcurrency(t *testing.T) {
	tests := []struct {
		name          string
		maxConcurrent int
		want          int
	}{
		{"explicit", 3, 3},
		{"zero means GOMAXPROCS", 0, runtime.GOMAXPROCS(0)},
		{"negative means GOMAXPROCS", -1, runtime.GOMAXPROCS(0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHasher(t, cheapParams, tt.maxConcurrent)
			if got := cap(h.sem); got != tt.want {
				t.Errorf("semaphore capacity = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestHashVerifyDefaultParams is the only test paying the real 19 MiB cost.
func TestHashVerifyDefaultParams(t *testing.T) {
	ctx := context.Background()
	h, err := NewPasswordHasher(DefaultPasswordParams, 0)
	if err != nil {
		t.Fatalf("NewPasswordHasher error = %v", err)
	}
	encoded, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatalf("Hash error = %v", err)
	}

	shape := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !shape.MatchString(encoded) {
		t.Errorf("Hash = %q, want match for %s", encoded, shape)
	}
	v, err := parsePHC(encoded)
	if err != nil {
		t.Fatalf("parsePHC(Hash()) error = %v", err)
	}
	if len(v.salt) != 16 || len(v.key) != 32 {
		t.Errorf("salt, key lengths = %d, %d, want 16, 32", len(v.salt), len(v.key))
	}

	tests := []struct {
		name     string
		password string
		wantOK   bool
	}{
		{"right password", "correct horse battery staple", true},
		{"wrong password", "correct horse battery stapler", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(ctx, encoded, tt.password)
			if err != nil {
				t.Fatalf("Verify error = %v", err)
			}
			if ok != tt.wantOK || rehash {
				t.Errorf("Verify = (%v, %v), want (%v, false)", ok, rehash, tt.wantOK)
			}
		})
	}
	if n := len(h.sem); n != 0 {
		t.Errorf("slots held after calls = %d, want 0", n)
	}
}

func TestHashUsesFreshSalt(t *testing.T) {
	ctx := context.Background()
	h := newTestHasher(t, cheapParams, 1)
	a, err := h.Hash(ctx, "pw")
	if err != nil {
		t.Fatalf("Hash error = %v", err)
	}
	b, err := h.Hash(ctx, "pw")
	if err != nil {
		t.Fatalf("Hash error = %v", err)
	}
	if a == b {
		t.Errorf("two hashes of the same password are equal: %q", a)
	}
}

func TestVerifyBcrypt(t *testing.T) {
	ctx := context.Background()
	h := newTestHasher(t, cheapParams, 1)
	hashed, err := bcrypt.GenerateFromPassword([]byte("hunter2"), bcrypt.MinCost)
	if err != nil {
		t.Fatalf("bcrypt.GenerateFromPassword error = %v", err)
	}
	b := string(hashed) // $2a$04$...
	tests := []struct {
		name       string
		encoded    string
		password   string
		wantOK     bool
		wantRehash bool
	}{
		{"2a right password", b, "hunter2", true, true},
		{"2b right password", "$2b$" + b[4:], "hunter2", true, true},
		{"2y right password", "$2y$" + b[4:], "hunter2", true, true},
		{"wrong password", b, "hunter3", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(ctx, tt.encoded, tt.password)
			if err != nil {
				t.Fatalf("Verify error = %v", err)
			}
			if ok != tt.wantOK || rehash != tt.wantRehash {
				t.Errorf("Verify = (%v, %v), want (%v, %v)", ok, rehash, tt.wantOK, tt.wantRehash)
			}
		})
	}
}

func TestVerifyNeedsRehash(t *testing.T) {
	ctx := context.Background()
	// h's params are cheap so the "current" hashes below are cheap too.
	p := PasswordParams{Memory: 256, Iterations: 2, Parallelism: 2, SaltLen: 16, KeyLen: 32}
	h := newTestHasher(t, p, 1)
	const pw = "s3cret"
	tests := []struct {
		name    string
		encoded string
		want    bool
	}{
		{"same params", encodeArgon2id(t, pw, 256, 2, 2, 16, 32), false},
		{"stronger params", encodeArgon2id(t, pw, 512, 3, 2, 32, 64), false},
		{"fewer lanes", encodeArgon2id(t, pw, 256, 2, 1, 16, 32), false},
		{"less memory", encodeArgon2id(t, pw, 128, 2, 2, 16, 32), true},
		{"fewer iterations", encodeArgon2id(t, pw, 256, 1, 2, 16, 32), true},
		{"shorter salt", encodeArgon2id(t, pw, 256, 2, 2, 8, 32), true},
		{"shorter key", encodeArgon2id(t, pw, 256, 2, 2, 16, 16), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(ctx, tt.encoded, pw)
			if err != nil || !ok {
				t.Fatalf("Verify = (%v, _, %v), want (true, _, nil)", ok, err)
			}
			if rehash != tt.want {
				t.Errorf("needsRehash = %v, want %v", rehash, tt.want)
			}
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	ctx := context.Background()
	h := newTestHasher(t, cheapParams, 1)
	valid := encodeArgon2id(t, "pw", 64, 1, 1, 16, 32)
	parts := strings.Split(valid, "$") // "", "argon2id", "v=19", params, salt, key
	salt, key := parts[4], parts[5]
	bc, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatalf("bcrypt.GenerateFromPassword error = %v", err)
	}
	bcHash := string(bc)

	tests := []struct {
		name    string
		encoded string
		wantErr error
	}{
		{"empty", "", ErrUnsupportedHash},
		{"plain text", "pw", ErrUnsupportedHash},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key, ErrUnsupportedHash},
		{"argon2d", "$argon2d$v=19$m=64,t=1,p=1$" + salt + "$" + key, ErrUnsupportedHash},
		{"scrypt", "$scrypt$ln=16,r=8,p=1$" + salt + "$" + key, ErrUnsupportedHash},
		{"bcrypt 2x", "$2x$" + bcHash[4:], ErrUnsupportedHash},
		{"version 16", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key, ErrMalformedHash},
		{"version missing", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key, ErrMalformedHash},
		{"version not a number", "$argon2id$v=x$m=64,t=1,p=1$" + salt + "$" + key, ErrMalformedHash},
		{"missing key", "$argon2id$v=19$m=64,t=1,p=1$" + salt, ErrMalformedHash},
		{"missing salt and key", "$argon2id$v=19$m=64,t=1,p=1", ErrMalformedHash},
		{"prefix only", "$argon2id$", ErrMalformedHash},
		{"extra field", valid + "$" + key, ErrMalformedHash},
		{"trailing dollar", valid + "$", ErrMalformedHash},
		{"missing parameter", "$argon2id$v=19$m=64,t=1$" + salt + "$" + key, ErrMalformedHash},
		{"parameters reordered", "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key, ErrMalformedHash},
		{"negative memory", "$argon2id$v=19$m=-64,t=1,p=1$" + salt + "$" + key, ErrMalformedHash},
		{"leading zero", "$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key, ErrMalformedHash},
		{"huge memory", "$argon2id$v=19$m=4194305,t=1,p=1$" + salt + "$" + key, ErrMalformedHash},
		{"memory overflows uint32", "$argon2id$v=19$m=99999999999,t=1,p=1$" + salt + "$" + key, ErrMalformedHash},
		{"memory below 8 per lane", "$argon2id$v=19$m=15,t=1,p=2$" + salt + "$" + key, ErrMalformedHash},
		{"zero iterations", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key, ErrMalformedHash},
		{"too many iterations", "$argon2id$v=19$m=64,t=101,p=1$" + salt + "$" + key, ErrMalformedHash},
		{"zero parallelism", "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key, ErrMalformedHash},
		{"parallelism above 255", "$argon2id$v=19$m=4096,t=1,p=256$" + salt + "$" + key, ErrMalformedHash},
		{"bad base64 salt", "$argon2id$v=19$m=64,t=1,p=1$" + salt[:20] + "!!$" + key, ErrMalformedHash},
		{"bad base64 key", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:40] + "*" + key[41:], ErrMalformedHash},
		{"padded base64", valid + "=", ErrMalformedHash},
		{"newline in base64", "$argon2id$v=19$m=64,t=1,p=1$" + salt[:10] + "\n" + salt[10:] + "$" + key, ErrMalformedHash},
		{"salt too short", "$argon2id$v=19$m=64,t=1,p=1$AAAAAAAA$" + key, ErrMalformedHash},
		{"key too long", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + strings.Repeat("A", 1368), ErrMalformedHash},
		{"bcrypt truncated", bcHash[:59], ErrMalformedHash},
		{"bcrypt cost too high", bcHash[:4] + "31" + bcHash[6:], ErrMalformedHash},
		{"bcrypt cost not a number", bcHash[:4] + "+5" + bcHash[6:], ErrMalformedHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const password = "xyzzy-plugh"
			ok, rehash, err := h.Verify(ctx, tt.encoded, password)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Verify error = %v, want %v", err, tt.wantErr)
			}
			if ok || rehash {
				t.Errorf("Verify = (%v, %v), want (false, false)", ok, rehash)
			}
			if err != nil && (strings.Contains(err.Error(), salt) || strings.Contains(err.Error(), password)) {
				t.Errorf("error %q leaks the hash or password", err)
			}
		})
	}
}

func TestVerifyDummy(t *testing.T) {
	h, err := NewPasswordHasher(DefaultPasswordParams, 1)
	if err != nil {
		t.Fatalf("NewPasswordHasher error = %v", err)
	}
	// The dummy must go through the full argon2id path, not fail early.
	v, err := parsePHC(h.dummy)
	if err != nil {
		t.Fatalf("parsePHC(dummy) error = %v", err)
	}
	if v.weakerThan(h.params) || v.parallelism != h.params.Parallelism {
		t.Errorf("dummy params = %+v, want the hasher's params %+v", v, h.params)
	}
	if got := h.VerifyDummy(context.Background(), ""); got {
		t.Errorf("VerifyDummy = %v, want false", got)
	}
	if n := len(h.sem); n != 0 {
		t.Errorf("slots held after VerifyDummy = %d, want 0", n)
	}
}

func TestHashCancelledWithFreeSlot(t *testing.T) {
	h := newTestHasher(t, cheapParams, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// A request that is already gone must not start work, even with a slot free.
	if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.Canceled) {
		t.Errorf("Hash error = %v, want %v", err, context.Canceled)
	}
	if n := len(h.sem); n != 0 {
		t.Errorf("slots held = %d, want 0", n)
	}
}

// semaphoreOps returns each operation that must take a slot, as a func
// reporting the error it returned.
func semaphoreOps(t *testing.T, h *PasswordHasher) []struct {
	name string
	op   func(ctx context.Context) error
} {
	t.Helper()
	argonHash := fakeArgon2id(h)
	bc, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatalf("bcrypt.GenerateFromPassword error = %v", err)
	}
	return []struct {
		name string
		op   func(ctx context.Context) error
	}{
		{"Hash", func(ctx context.Context) error {
			_, err := h.Hash(ctx, "pw")
			return err
		}},
		{"Verify argon2id", func(ctx context.Context) error {
			_, _, err := h.Verify(ctx, argonHash, "pw")
			return err
		}},
		{"Verify bcrypt", func(ctx context.Context) error {
			_, _, err := h.Verify(ctx, string(bc), "pw")
			return err
		}},
		{"VerifyDummy", func(ctx context.Context) error {
			if h.VerifyDummy(ctx, "pw") {
				return errors.New("VerifyDummy returned true")
			}
			return nil
		}},
	}
}

// TestSemaphoreCancelled holds the only slot and checks that each operation
// gives up with the context's error instead of running.
func TestSemaphoreCancelled(t *testing.T) {
	h := newTestHasher(t, cheapParams, 1)
	for _, tt := range semaphoreOps(t, h) {
		if tt.name == "VerifyDummy" {
			continue // reports no error; covered by TestSemaphoreBlocks
		}
		t.Run(tt.name, func(t *testing.T) {
			h.sem <- struct{}{} // hold the only slot
			defer h.release()

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- tt.op(ctx) }()
			// Whether the goroutine is already waiting for the slot or has not
			// reached it yet, cancelling must make it return ctx's error. Had
			// it run without a slot it would have returned nil.
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("error = %v, want %v", err, context.Canceled)
			}
			if n := len(h.sem); n != 1 {
				t.Errorf("slots held = %d, want 1 (only the test's)", n)
			}
		})
	}
}

// TestSemaphoreBlocks uses a synctest bubble to observe, without sleeping,
// that each operation waits while all slots are taken and proceeds once one
// frees up.
func TestSemaphoreBlocks(t *testing.T) {
	names := semaphoreOps(t, newTestHasher(t, cheapParams, 1))
	for i := range names {
		t.Run(names[i].name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// The semaphore must be created inside the bubble.
				h := newTestHasher(t, cheapParams, 2)
				op := semaphoreOps(t, h)[i].op
				h.sem <- struct{}{}
				h.sem <- struct{}{}

				done := make(chan error, 1)
				go func() { done <- op(context.Background()) }()
				synctest.Wait() // the goroutine is now durably blocked
				select {
				case err := <-done:
					t.Fatalf("returned (err = %v) while all slots were held", err)
				default:
				}

				h.release()
				if err := <-done; err != nil {
					t.Fatalf("error = %v after a slot was freed", err)
				}
				if n := len(h.sem); n != 1 {
					t.Errorf("slots held = %d, want 1 (only the test's)", n)
				}
				h.release()
			})
		})
	}
}

func TestParsePHCRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   phc
	}{
		{"minimal", phc{memory: 8, iterations: 1, parallelism: 1, salt: make([]byte, 8), key: make([]byte, 8)}},
		{"default", phc{memory: 19456, iterations: 2, parallelism: 1, salt: bytes.Repeat([]byte{1}, 16), key: bytes.Repeat([]byte{2}, 32)}},
		{"limits", phc{memory: maxMemory, iterations: maxIterations, parallelism: 255, salt: bytes.Repeat([]byte{0xff}, maxPHCBytes), key: bytes.Repeat([]byte{0xfe}, maxPHCBytes)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.in.String()
			got, err := parsePHC(s)
			if err != nil {
				t.Fatalf("parsePHC(%q) error = %v", s, err)
			}
			if !phcEqual(got, tt.in) {
				t.Errorf("parsePHC(%q) = %+v, want %+v", s, got, tt.in)
			}
		})
	}
}

func phcEqual(a, b phc) bool {
	return a.memory == b.memory && a.iterations == b.iterations && a.parallelism == b.parallelism &&
		bytes.Equal(a.salt, b.salt) && bytes.Equal(a.key, b.key)
}
