package authz

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// metadata is the RFC 8414 authorization server metadata.
type metadata struct {
	Issuer                                    string   `json:"issuer"`
	TokenEndpoint                             string   `json:"token_endpoint"`
	JWKSURI                                   string   `json:"jwks_uri"`
	IntrospectionEndpoint                     string   `json:"introspection_endpoint"`
	RevocationEndpoint                        string   `json:"revocation_endpoint"`
	ResponseTypesSupported                    []string `json:"response_types_supported"`
	GrantTypesSupported                       []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported         []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported             []string `json:"code_challenge_methods_supported"`
	AccessTokenSigningAlgValuesSupported      []string `json:"access_token_signing_alg_values_supported"`
}

func (s *Server) encodeMetadata() ([]byte, error) {
	iss := s.cfg.Issuer
	return json.MarshalIndent(metadata{
		Issuer:                 iss,
		TokenEndpoint:          iss + "/token",
		JWKSURI:                iss + "/.well-known/jwks.json",
		IntrospectionEndpoint:  iss + "/introspect",
		RevocationEndpoint:     iss + "/revoke",
		ResponseTypesSupported: []string{},
		GrantTypesSupported: []string{
			GrantClientCredentials, GrantPassword, GrantRefreshToken,
		},
		TokenEndpointAuthMethodsSupported:         []string{"client_secret_basic", "client_secret_post", "none"},
		IntrospectionEndpointAuthMethodsSupported: []string{"client_secret_basic"},
		RevocationEndpointAuthMethodsSupported:    []string{"client_secret_basic", "client_secret_post", "none"},
		CodeChallengeMethodsSupported:             []string{"S256"},
		AccessTokenSigningAlgValuesSupported:      []string{"ES256", "RS256"},
	}, "", "  ")
}

func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(s.metadata)
}

// handleJWKS serves the public signing keys. Resource servers may cache the
// set for jwksMaxAge; rotation publishes a key longer than that before it
// signs, so a cached set never misses a key in use.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := s.keys.JWKS(ctx)
	if err != nil {
		s.log.ErrorContext(ctx, "jwks unavailable", "err", err)
		w.Header().Set("Retry-After", "5")
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "The key set is unavailable; retry later.")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(jwksMaxAge.Seconds())))
	_, _ = w.Write(body)
}
