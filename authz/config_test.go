package authz

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	good := Config{Issuer: "https://auth.example", Secret: []byte(strings.Repeat("s", MinSecretLength))}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string // substrings of the problems, one per problem
	}{
		{"defaults are valid", func(*Config) {}, nil},
		{"loopback http issuer", func(c *Config) { c.Issuer = "http://127.0.0.1:8080" }, nil},
		{"ipv6 loopback issuer", func(c *Config) { c.Issuer = "http://[::1]:8080" }, nil},
		{"plain http issuer", func(c *Config) { c.Issuer = "http://auth.example" }, []string{"must use https"}},
		{"loopback only by prefix", func(c *Config) { c.Issuer = "http://127.evil.example" }, []string{"must use https"}},
		{"dev allows http", func(c *Config) { c.Issuer, c.Dev = "http://auth.example", true }, nil},
		{"issuer with query", func(c *Config) { c.Issuer = "https://auth.example/?a=b" }, []string{"query or fragment"}},
		{"every problem at once", func(c *Config) {
			c.Issuer, c.Secret, c.SigningAlg = "ftp://x", []byte("short"), "HS256"
			c.AccessTokenLifespan, c.RefreshTokenLifespan, c.RefreshFamilyLifespan = time.Second, time.Hour, time.Minute
		}, []string{"issuer", "secret", "signing algorithm", "access token lifespan", "refresh family lifespan"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mutate(&c)
			err := c.Validate()
			var cerr *ConfigError
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			if !errors.As(err, &cerr) || len(cerr.Problems) != len(tc.want) {
				t.Fatalf("got %v, want %d problems %q", err, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(cerr.Problems[i].Error(), w) {
					t.Errorf("problem %d = %q, want it to mention %q", i, cerr.Problems[i], w)
				}
			}
		})
	}
}

func TestNewClientIDNeverLooksLikeAFlag(t *testing.T) {
	for range 2000 {
		if id := newClientID(); id[0] == '-' || id[0] == '_' || len(id) != 22 {
			t.Fatalf("client ID %q", id)
		}
	}
}
