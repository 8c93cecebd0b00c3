package agent

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
)

// httpAuth guards an http block's endpoints: with token_file every request
// carries "Authorization: Bearer TOKEN"; with tls.client_ca_file every
// request comes with a client certificate that CA signed. The endpoints the
// block lists as public answer without either, and then leave out the
// watches' names and errors. A reload replaces the token in place
// (setToken).
type httpAuth struct {
	token      bool
	tokenSum   atomic.Pointer[[sha256.Size]byte] // compared in constant time
	clientCert bool
	public     []string
}

func newHTTPAuth(h *HTTPConfig) (*httpAuth, error) {
	a := &httpAuth{clientCert: h.TLS != nil && h.TLS.ClientCAFile != "", public: h.Public}
	if h.TokenFile != "" {
		tok, err := ReadHTTPToken(h.TokenFile)
		if err != nil {
			return nil, err
		}
		a.token = true
		a.setToken(tok)
	}
	return a, nil
}

// setToken makes tok the token requests need from now on, the previous one
// no longer valid.
func (a *httpAuth) setToken(tok string) {
	sum := sha256.Sum256([]byte(tok))
	a.tokenSum.Store(&sum)
}

// ReadHTTPToken reads an http block's token_file: one line, the token,
// surrounding white space ignored.
func ReadHTTPToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("http token_file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	switch {
	case tok == "":
		return "", fmt.Errorf("http token_file %s is empty: write a random token in it (e.g. openssl rand -hex 32)", path)
	case strings.ContainsAny(tok, " \t\r\n"):
		return "", fmt.Errorf("http token_file %s holds more than one word: it must hold the token alone", path)
	}
	return tok, nil
}

// wrap returns next behind the block's authentication.
func (a *httpAuth) wrap(next http.Handler) http.Handler {
	if !a.token && !a.clientCert {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		why := a.refusal(r)
		switch {
		case why == "":
			next.ServeHTTP(w, r)
		case slices.Contains(a.public, r.URL.Path):
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), anonymousKey{}, true)))
		default:
			if a.token {
				w.Header().Set("WWW-Authenticate", `Bearer realm="slipagent"`)
			}
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": why})
		}
	})
}

// refusal says why r is not authenticated, or "" when it is.
func (a *httpAuth) refusal(r *http.Request) string {
	if a.clientCert && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
		return "a client certificate signed by the http tls client_ca_file is required"
	}
	if a.token {
		scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		ok = ok && strings.EqualFold(scheme, "Bearer") // the scheme is case-insensitive (RFC 9110)
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], a.tokenSum.Load()[:]) != 1 {
			return "a valid bearer token is required: Authorization: Bearer <the content of the http token_file>"
		}
	}
	return ""
}

// anonymousKey marks a request to a public endpoint that did not
// authenticate.
type anonymousKey struct{}

// withWatches adds the watches to a health answer unless r is anonymous:
// their names and errors are for those who authenticate.
func withWatches(r *http.Request, body map[string]any, watches []WatchStatus) map[string]any {
	if r.Context().Value(anonymousKey{}) == nil {
		body["watches"] = watches
	}
	return body
}
