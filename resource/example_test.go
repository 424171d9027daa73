package resource_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/authz/authz/resource"
)

// An orders API accepts tokens from its authorization server: reading needs
// the orders:read scope, placing an order orders:write.
func ExampleVerifier_Middleware() {
	v, err := resource.NewVerifier(resource.Config{
		Issuer:   "https://auth.example.com",
		Audience: "orders",
	})
	if err != nil {
		log.Fatal(err)
	}

	list := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := resource.ClaimsFrom(r.Context())
		fmt.Fprintf(w, "orders of %s\n", claims.Subject)
	})
	place := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	})
	mux := http.NewServeMux()
	mux.Handle("GET /orders", v.Middleware("orders:read")(list))
	mux.Handle("POST /orders", v.Middleware("orders:write")(place))

	// A request without a token is refused with a challenge; the issuer's
	// keys are only fetched once a token arrives.
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/orders", nil))
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))
	// Output: 401 Bearer realm="orders"
}
