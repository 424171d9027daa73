package authz

import (
	"errors"
	"net/http"

	"github.com/ory/fosite"
)

// handleRevoke is the revocation endpoint (RFC 7009). Revoking either token
// of a grant revokes the whole grant: its access and refresh tokens.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	err := s.provider.NewRevocationRequest(ctx, r)
	switch {
	case err == nil:
	case errors.Is(err, fosite.ErrTemporarilyUnavailable):
		// fosite would answer 200 here; a client must learn that nothing was
		// revoked so it can retry (RFC 7009 section 2.2.1).
		s.log.ErrorContext(ctx, "revocation failed", "err", err)
		w.Header().Set("Retry-After", "5")
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "The token could not be revoked now; retry later.")
		return
	case errors.Is(err, fosite.ErrUnauthorizedClient):
		// The token was issued to another client. fosite answers 200 and
		// revokes nothing; RFC 7009 section 2.1 says to refuse and say so.
		s.logProtocolError(ctx, r, asRFC6749(err), err)
		writeJSONError(w, http.StatusBadRequest, "unauthorized_client", "The token was not issued to this client.")
		return
	default:
		rfc := asRFC6749(err)
		s.logProtocolError(ctx, r, rfc, err)
		if rfc.ErrorField == fosite.ErrInvalidClient.ErrorField {
			challengeBasic(w, r)
		}
	}
	s.provider.WriteRevocationResponse(ctx, w, err)
}
