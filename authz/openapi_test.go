package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"mime"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// openAPIPath is docs/openapi.yaml seen from this package's directory, where
// go test runs.
const openAPIPath = "../docs/openapi.yaml"

// servedRoutes mirrors the patterns Server.Handler registers. /token,
// /introspect and /revoke are registered for every method, but only POST
// does anything: the others are refused with an error, which the route
// probe below checks.
var servedRoutes = []string{
	"POST /token",
	"POST /introspect",
	"POST /revoke",
	"GET /.well-known/oauth-authorization-server",
	"GET /.well-known/jwks.json",
	"GET /healthz",
	"GET /readyz",
}

// TestOpenAPIDocument keeps docs/openapi.yaml true to the server: the same
// routes, every status a cheap request can trigger documented with its
// headers, and every answer valid against the documented schema.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	e := newTestEnv(t)
	// Any failed sign-in blocks the account for an hour, so the throttled
	// answer can be had without waiting or depending on timing. Set before
	// the first request, so no handler reads it concurrently.
	e.srv.throttle.account = throttlePolicy{Window: time.Hour, Free: 0, Base: time.Hour, Max: time.Hour, Cap: 1 << 30}

	t.Run("version", func(t *testing.T) {
		v, _ := doc.root["openapi"].(string)
		if !regexp.MustCompile(`^3\.1\.\d+$`).MatchString(v) {
			t.Errorf("openapi = %q, want 3.1.x", v)
		}
	})

	t.Run("references resolve", func(t *testing.T) {
		for _, ref := range collectRefs(doc.root) {
			if _, err := doc.resolve(ref); err != nil {
				t.Errorf("$ref %q: %v", ref, err)
			}
		}
		schemes := doc.at("components", "securitySchemes")
		for route, op := range doc.operations() {
			reqs, _ := op["security"].([]any)
			for _, r := range reqs {
				for name := range asObject(r) {
					if schemes[name] == nil {
						t.Errorf("%s: security scheme %q is not declared", route, name)
					}
				}
			}
		}
	})

	t.Run("routes", func(t *testing.T) {
		documented := slices.Sorted(maps.Keys(doc.operations()))
		served := slices.Sorted(slices.Values(servedRoutes))
		for _, r := range documented {
			if !slices.Contains(served, r) {
				t.Errorf("documented route %s is not served; served routes: %v", r, served)
			}
		}
		for _, r := range served {
			if !slices.Contains(documented, r) {
				t.Errorf("served route %s is not documented; documented routes: %v", r, documented)
			}
		}
	})

	// Documented GET routes must answer, and methods the document does not
	// list must be refused, whatever the mux pattern accepts. The requests
	// go out here, as the harness fails the test from this goroutine.
	type methodProbe struct {
		method, path string
		documented   bool
		got          response
	}
	var methodProbes []methodProbe
	for path, item := range doc.at("paths") {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			_, documented := asObject(item)[strings.ToLower(method)]
			if method == http.MethodPost && documented {
				continue // the responses probes exercise these
			}
			req, err := http.NewRequest(method, e.url+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			methodProbes = append(methodProbes, methodProbe{method, path, documented, e.do(req)})
		}
	}
	t.Run("route probe", func(t *testing.T) {
		for _, p := range methodProbes {
			switch st := p.got.status; {
			case p.documented && (st == http.StatusNotFound || st == http.StatusMethodNotAllowed):
				t.Errorf("%s %s: got %d, want it served", p.method, p.path, st)
			case !p.documented && st != http.StatusBadRequest && st != http.StatusNotFound &&
				st != http.StatusMethodNotAllowed:
				t.Errorf("%s %s is not documented: got %d, want 400, 404 or 405", p.method, p.path, st)
			}
		}
	})

	probes := openAPIProbes(t, e)

	t.Run("responses", func(t *testing.T) {
		for _, p := range probes {
			t.Run(p.route+" "+p.name, func(t *testing.T) {
				if p.got.status != p.want {
					t.Fatalf("status %d %s, want %d: the probe no longer triggers what it is for", p.got.status, redactTokens(p.got.body), p.want)
				}
				doc.checkResponse(t, p.route, p.got)
			})
		}
	})

	t.Run("metadata schema", func(t *testing.T) {
		schema := doc.at("components", "schemas", "AuthorizationServerMetadata")
		props := sortedKeys(asObject(schema["properties"]))
		if want := jsonFieldNames(reflect.TypeFor[metadata]()); !slices.Equal(props, want) {
			t.Errorf("schema properties %v, want the metadata struct's fields %v", props, want)
		}
		live := sortedKeys(probes.body(t, "GET /.well-known/oauth-authorization-server", "document"))
		if !slices.Equal(props, live) {
			t.Errorf("schema properties %v, want the keys the endpoint returns %v", props, live)
		}
		required := asStrings(schema["required"])
		sort.Strings(required)
		if !slices.Equal(required, live) {
			t.Errorf("required %v, want every key the endpoint returns %v", required, live)
		}
	})

	t.Run("introspection schema", func(t *testing.T) {
		props := sortedKeys(asObject(doc.at("components", "schemas", "Introspection")["properties"]))
		if want := jsonFieldNames(reflect.TypeFor[introspection]()); !slices.Equal(props, want) {
			t.Errorf("schema properties %v, want the introspection struct's fields %v", props, want)
		}
		for _, name := range []string{"active access token", "active refresh token"} {
			for _, k := range sortedKeys(probes.body(t, "POST /introspect", name)) {
				if !slices.Contains(props, k) {
					t.Errorf("%s: key %q is not in the schema's properties %v", name, k, props)
				}
			}
		}
		inactive := sortedKeys(asObject(doc.at("components", "schemas", "InactiveToken")["properties"]))
		if live := sortedKeys(probes.body(t, "POST /introspect", "unknown token")); !slices.Equal(inactive, live) {
			t.Errorf("InactiveToken properties %v, want the keys of an inactive answer %v", inactive, live)
		}
	})

	t.Run("grant types", func(t *testing.T) {
		schema := doc.at("components", "schemas", "TokenRequest")
		got := asStrings(asObject(asObject(schema["properties"])["grant_type"])["enum"])
		sort.Strings(got)
		want := slices.Sorted(maps.Keys(supportedGrantTypes))
		if !slices.Equal(got, want) {
			t.Errorf("grant_type enum %v, want the grant types /token serves %v", got, want)
		}
	})

	t.Run("client authentication", func(t *testing.T) {
		meta := probes.body(t, "GET /.well-known/oauth-authorization-server", "document")
		for route, key := range map[string]string{
			"POST /token":      "token_endpoint_auth_methods_supported",
			"POST /introspect": "introspection_endpoint_auth_methods_supported",
			"POST /revoke":     "revocation_endpoint_auth_methods_supported",
		} {
			op := doc.operations()[route]
			methods := asStrings(op["x-auth-methods"])
			if live := asStrings(meta[key]); !slices.Equal(methods, live) {
				t.Errorf("%s: x-auth-methods %v, want metadata %s %v", route, methods, key, live)
			}
			var basic, form bool
			reqs, _ := op["security"].([]any)
			for _, r := range reqs {
				m := asObject(r)
				basic = basic || m["clientSecretBasic"] != nil
				form = form || len(m) == 0
			}
			wantForm := slices.Contains(methods, "client_secret_post") || slices.Contains(methods, "none")
			if want := slices.Contains(methods, "client_secret_basic"); basic != want {
				t.Errorf("%s: clientSecretBasic required = %v, want %v for methods %v", route, basic, want, methods)
			}
			if form != wantForm {
				t.Errorf("%s: empty requirement for form credentials = %v, want %v for methods %v", route, form, wantForm, methods)
			}
		}
		for route, op := range doc.operations() {
			if strings.HasPrefix(route, "GET ") {
				if reqs, ok := op["security"].([]any); !ok || len(reqs) != 0 {
					t.Errorf("%s: security = %v, want [] (unauthenticated)", route, op["security"])
				}
			}
		}
		for name, want := range map[string]string{"clientSecretBasic": "basic", "bearerAccessToken": "bearer"} {
			s := doc.at("components", "securitySchemes", name)
			if s["type"] != "http" || s["scheme"] != want {
				t.Errorf("security scheme %s: type %v scheme %v, want http %s", name, s["type"], s["scheme"], want)
			}
		}
	})
}

// openAPIProbe is one request sent to the test server and what it must
// answer.
type openAPIProbe struct {
	route string // "METHOD /path" as in the document
	name  string
	want  int
	got   response
}

type openAPIProbeList []openAPIProbe

// body returns the decoded JSON body of the named probe.
func (l openAPIProbeList) body(t *testing.T, route, name string) map[string]any {
	t.Helper()
	for _, p := range l {
		if p.route == route && p.name == name {
			if p.got.status != p.want {
				t.Fatalf("%s %s: status %d, want %d", route, name, p.got.status, p.want)
			}
			return p.got.json(t)
		}
	}
	t.Fatalf("no probe %s %s", route, name)
	return nil
}

// openAPIProbes sends the requests that trigger each cheaply reachable
// answer of every endpoint. They run here, on the test's goroutine, since
// the harness fails the test from it.
func openAPIProbes(t *testing.T, e *testEnv) openAPIProbeList {
	t.Helper()
	ctx := context.Background()
	confidential := e.newClient(GrantPassword, GrantRefreshToken, GrantClientCredentials)
	other := e.newResourceServer()
	pub, _, err := e.srv.CreateClient(ctx, ClientSpec{
		Name: "public", Public: true, GrantTypes: []string{GrantPassword, GrantRefreshToken},
		Scopes: []string{"read"}, Audiences: []string{"api"},
	})
	if err != nil {
		t.Fatalf("create public client: %v", err)
	}
	codeClient, codeSecret, err := e.srv.CreateClient(ctx, ClientSpec{
		Name: "code", GrantTypes: []string{GrantAuthorizationCode}, RedirectURIs: []string{"http://127.0.0.1/cb"},
	})
	if err != nil {
		t.Fatalf("create authorization code client: %v", err)
	}
	code := testClient{ID: codeClient.ID, Secret: codeSecret}
	postClient, postSecret, err := e.srv.CreateClient(ctx, ClientSpec{
		Name: "post", GrantTypes: []string{GrantClientCredentials}, Scopes: []string{"read"},
		TokenEndpointAuthMethod: "client_secret_post",
	})
	if err != nil {
		t.Fatalf("create client_secret_post client: %v", err)
	}
	post := testClient{ID: postClient.ID, Secret: postSecret}
	postToken := func() string {
		r := e.post("/token", nil, url.Values{"grant_type": {"client_credentials"}, "client_id": {post.ID}, "client_secret": {post.Secret}})
		if r.status != http.StatusOK {
			t.Fatalf("client_secret_post token: %d %s", r.status, r.body)
		}
		return r.str(t, "access_token")
	}
	username, _ := e.newUser(testPassword)
	blocked := unique("blocked")
	if r := e.post("/token", &confidential, url.Values{
		"grant_type": {"password"}, "username": {blocked}, "password": {"wrong"},
	}); r.status != http.StatusBadRequest {
		t.Fatalf("first failed sign-in: status %d %s, want 400", r.status, r.body)
	}

	pwd := e.passwordToken(confidential, username, testPassword, "read write")
	introspectAT, introspectRT := pwd.str(t, "access_token"), pwd.str(t, "refresh_token")
	refreshRT := e.passwordToken(confidential, username, testPassword, "read").str(t, "refresh_token")
	pubRT := e.post("/token", nil, url.Values{
		"grant_type": {"password"}, "username": {username}, "password": {testPassword}, "client_id": {pub.ID},
	}).str(t, "refresh_token")
	wrong := testClient{ID: confidential.ID, Secret: "wrong"}

	get := func(path string) response {
		req, err := http.NewRequest(http.MethodGet, e.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		return e.do(req)
	}
	form := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	const tok, intro, rev = "POST /token", "POST /introspect", "POST /revoke"
	return openAPIProbeList{
		{tok, "client_credentials, client_secret_basic", 200, e.post("/token", &confidential, form("grant_type", "client_credentials"))},
		{tok, "client_credentials, client_secret_post", 200, e.post("/token", nil, form(
			"grant_type", "client_credentials", "client_id", post.ID, "client_secret", post.Secret))},
		{tok, "secret sent in a way the client is not registered for", 401, e.post("/token", nil, form(
			"grant_type", "client_credentials", "client_id", confidential.ID, "client_secret", confidential.Secret))},
		{tok, "password", 200, e.post("/token", &confidential, form(
			"grant_type", "password", "username", username, "password", testPassword, "scope", "read"))},
		{tok, "password, public client", 200, e.post("/token", nil, form(
			"grant_type", "password", "username", username, "password", testPassword, "client_id", pub.ID))},
		{tok, "refresh_token", 200, e.post("/token", &confidential, form("grant_type", "refresh_token", "refresh_token", refreshRT))},
		{tok, "unsupported grant type", 400, e.post("/token", &confidential, form("grant_type", "implicit"))},
		{tok, "no grant type", 400, e.post("/token", &confidential, form("scope", "read"))},
		{tok, "wrong password", 400, e.post("/token", &confidential, form(
			"grant_type", "password", "username", unique("nobody"), "password", "wrong"))},
		{tok, "unregistered scope", 400, e.post("/token", &confidential, form("grant_type", "client_credentials", "scope", "admin"))},
		{tok, "grant type not allowed", 400, e.post("/token", &other, form(
			"grant_type", "password", "username", username, "password", testPassword))},
		{tok, "authorization_code (reserved)", 400, e.post("/token", &code, form(
			"grant_type", "authorization_code", "code", "no-such-code", "redirect_uri", "http://127.0.0.1/cb",
			"code_verifier", strings.Repeat("v", 43)))},
		{tok, "wrong secret, client_secret_basic", 401, e.post("/token", &wrong, form("grant_type", "client_credentials"))},
		{tok, "wrong secret, client_secret_post", 401, e.post("/token", nil, form(
			"grant_type", "client_credentials", "client_id", wrong.ID, "client_secret", wrong.Secret))},
		{tok, "throttled sign-in", 429, e.post("/token", &confidential, form(
			"grant_type", "password", "username", blocked, "password", "wrong"))},

		{intro, "active access token", 200, e.post("/introspect", &other, form("token", introspectAT))},
		{intro, "active refresh token", 200, e.post("/introspect", &other, form("token", introspectRT))},
		{intro, "unknown token", 200, e.post("/introspect", &other, form("token", "no-such-token"))},
		{intro, "empty body", 400, e.post("/introspect", &other, url.Values{})},
		{intro, "no credentials", 401, e.post("/introspect", nil, form("token", introspectAT))},
		{intro, "wrong secret", 401, e.post("/introspect", &wrong, form("token", introspectAT))},
		{intro, "credentials in the form", 401, e.post("/introspect", nil, form(
			"token", introspectAT, "client_id", other.ID, "client_secret", other.Secret))},

		{rev, "own token, client_secret_basic", 200, e.post("/revoke", &other, form("token", e.tokenFor(other)))},
		{rev, "own token, client_secret_post", 200, e.post("/revoke", nil, form(
			"token", postToken(), "client_id", post.ID, "client_secret", post.Secret))},
		{rev, "own token, public client", 200, e.post("/revoke", nil, form("token", pubRT, "client_id", pub.ID))},
		{rev, "unknown token", 200, e.post("/revoke", &other, form("token", "no-such-token"))},
		{rev, "another client's token", 400, e.post("/revoke", &other, form("token", e.tokenFor(confidential)))},
		{rev, "no client identification", 400, e.post("/revoke", nil, form("token", "no-such-token"))},
		{rev, "empty body", 400, e.post("/revoke", &other, url.Values{})},
		{rev, "wrong secret", 401, e.post("/revoke", &wrong, form("token", "no-such-token"))},

		{"GET /.well-known/oauth-authorization-server", "document", 200, get("/.well-known/oauth-authorization-server")},
		{"GET /.well-known/jwks.json", "key set", 200, get("/.well-known/jwks.json")},
		{"GET /healthz", "up", 200, get("/healthz")},
		{"GET /readyz", "ready", 200, get("/readyz")},
	}
}

// openAPIDoc is the document decoded as JSON would be: objects are
// map[string]any and numbers float64.
type openAPIDoc struct {
	root map[string]any
}

func loadOpenAPI(t *testing.T) *openAPIDoc {
	t.Helper()
	raw, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatalf("read %s: %v", openAPIPath, err)
	}
	var y any
	if err := yaml.Unmarshal(raw, &y); err != nil {
		t.Fatalf("parse %s: %v", openAPIPath, err)
	}
	// A round trip through JSON proves the YAML stays within what JSON can
	// say, as OpenAPI requires, and gives one set of Go types to walk.
	j, err := json.Marshal(y)
	if err != nil {
		t.Fatalf("%s is not JSON-compatible: %v", openAPIPath, err)
	}
	var root map[string]any
	if err := json.Unmarshal(j, &root); err != nil {
		t.Fatalf("decode %s: %v", openAPIPath, err)
	}
	return &openAPIDoc{root: root}
}

// at returns the object at the given keys, or nil.
func (d *openAPIDoc) at(path ...string) map[string]any {
	m := d.root
	for _, k := range path {
		m = asObject(m[k])
	}
	return m
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// operations returns every operation keyed "METHOD /path".
func (d *openAPIDoc) operations() map[string]map[string]any {
	ops := map[string]map[string]any{}
	for path, item := range d.at("paths") {
		for k, op := range asObject(item) {
			if slices.Contains(httpMethods, k) {
				ops[strings.ToUpper(k)+" "+path] = asObject(op)
			}
		}
	}
	return ops
}

// resolve follows a local reference, a JSON pointer (RFC 6901) into the
// document.
func (d *openAPIDoc) resolve(ref string) (any, error) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("not a local reference")
	}
	var cur any = d.root
	for _, tok := range strings.Split(rest, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%q: parent is not an object", tok)
		}
		if cur, ok = m[tok]; !ok {
			return nil, fmt.Errorf("%q not found", tok)
		}
	}
	return cur, nil
}

// deref follows $ref until it reaches an object without one.
func (d *openAPIDoc) deref(t *testing.T, v any) map[string]any {
	t.Helper()
	m := asObject(v)
	for range 10 {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		target, err := d.resolve(ref)
		if err != nil {
			t.Fatalf("$ref %q: %v", ref, err)
		}
		m = asObject(target)
	}
	t.Fatalf("$ref chain too long at %v", m)
	return nil
}

// checkedHeaders are the response headers whose presence the document must
// state; the baseline security headers are described once, in info.
var checkedHeaders = []string{"Cache-Control", "Pragma", "WWW-Authenticate", "Retry-After"}

// checkResponse checks an answer of route against the document: its
// status, headers, media type and body.
func (d *openAPIDoc) checkResponse(t *testing.T, route string, got response) {
	t.Helper()
	op, ok := d.operations()[route]
	if !ok {
		t.Fatalf("route %s is not documented", route)
	}
	responses := asObject(op["responses"])
	status := strconv.Itoa(got.status)
	if _, ok := responses[status]; !ok {
		t.Fatalf("status %s is not documented; documented: %v", status, sortedKeys(responses))
	}
	resp := d.deref(t, responses[status])

	documented := map[string]map[string]any{}
	for name, h := range asObject(resp["headers"]) {
		documented[http.CanonicalHeaderKey(name)] = d.deref(t, h)
	}
	for _, name := range checkedHeaders {
		if got.header.Get(name) != "" && documented[http.CanonicalHeaderKey(name)] == nil {
			t.Errorf("header %s: %q sent but not documented", name, got.header.Get(name))
		}
	}
	for name, h := range documented {
		value := got.header.Get(name)
		if value == "" {
			if h["required"] == true {
				t.Errorf("header %s: documented as required, not sent", name)
			}
			continue
		}
		var v any = value
		if asObject(h["schema"])["type"] == "integer" {
			n, err := strconv.Atoi(value)
			if err != nil {
				t.Errorf("header %s = %q, want an integer", name, value)
				continue
			}
			v = float64(n)
		}
		for _, p := range d.validate(t, h["schema"], v, "header "+name) {
			t.Error(p)
		}
	}

	content := asObject(resp["content"])
	if len(got.body) == 0 {
		if len(content) != 0 {
			t.Errorf("empty body, but the document gives content %v", sortedKeys(content))
		}
		return
	}
	mt, _, err := mime.ParseMediaType(got.header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type %q: %v", got.header.Get("Content-Type"), err)
	}
	media, ok := content[mt]
	if !ok {
		t.Fatalf("media type %s is not documented; documented: %v", mt, sortedKeys(content))
	}
	var body any = string(got.body)
	if mt == "application/json" || strings.HasSuffix(mt, "+json") {
		if err := json.Unmarshal(got.body, &body); err != nil {
			t.Fatalf("body %s: %v", got.body, err)
		}
	}
	for _, p := range d.validate(t, asObject(media)["schema"], body, "body") {
		t.Errorf("%s (body %s)", p, redactTokens(got.body))
	}
}

// validate checks v against the subset of JSON Schema the document uses:
// $ref, oneOf, type, const, enum, minimum, required, properties,
// additionalProperties: false, items and maxItems. It returns the problems.
func (d *openAPIDoc) validate(t *testing.T, schema any, v any, at string) []string {
	t.Helper()
	s := d.deref(t, schema)
	var problems []string
	fail := func(format string, args ...any) {
		problems = append(problems, at+": "+fmt.Sprintf(format, args...))
	}

	if alts, ok := s["oneOf"].([]any); ok {
		matched := 0
		for _, alt := range alts {
			if len(d.validate(t, alt, v, at)) == 0 {
				matched++
			}
		}
		if matched != 1 {
			fail("%v matches %d of the oneOf alternatives, want exactly 1", v, matched)
		}
	}
	if c, ok := s["const"]; ok && !reflect.DeepEqual(c, v) {
		fail("got %#v, want %#v", v, c)
	}
	if e, ok := s["enum"].([]any); ok && !slices.ContainsFunc(e, func(x any) bool { return reflect.DeepEqual(x, v) }) {
		fail("got %#v, want one of %v", v, e)
	}
	typ, _ := s["type"].(string)
	switch typ {
	case "":
	case "string":
		if _, ok := v.(string); !ok {
			fail("got %#v, want a string", v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			fail("got %#v, want a boolean", v)
		}
	case "integer":
		n, ok := v.(float64)
		if !ok || n != math.Trunc(n) {
			fail("got %#v, want an integer", v)
		} else if min, ok := s["minimum"].(float64); ok && n < min {
			fail("got %v, want at least %v", n, min)
		}
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			fail("got %#v, want an object", v)
			break
		}
		props := asObject(s["properties"])
		for _, k := range asStrings(s["required"]) {
			if _, ok := obj[k]; !ok {
				fail("required property %q is missing", k)
			}
		}
		for k, pv := range obj {
			ps, ok := props[k]
			if !ok {
				if s["additionalProperties"] == false {
					fail("property %q is not documented", k)
				}
				continue
			}
			problems = append(problems, d.validate(t, ps, pv, at+"."+k)...)
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			fail("got %#v, want an array", v)
			break
		}
		if max, ok := s["maxItems"].(float64); ok && float64(len(arr)) > max {
			fail("%d items, want at most %v", len(arr), max)
		}
		if items, ok := s["items"]; ok {
			for i, x := range arr {
				problems = append(problems, d.validate(t, items, x, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	default:
		t.Fatalf("%s: schema type %q is not supported by this validator", at, typ)
	}
	return problems
}

// redactTokens returns a body for a failure message, with the tokens of a
// token response left out: failures should not print credentials.
func redactTokens(body []byte) string {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return string(body)
	}
	for _, k := range []string{"access_token", "refresh_token"} {
		if _, ok := m[k]; ok {
			m[k] = "[redacted]"
		}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// collectRefs returns every $ref value in v.
func collectRefs(v any) []string {
	var refs []string
	switch x := v.(type) {
	case map[string]any:
		for k, y := range x {
			if s, ok := y.(string); ok && k == "$ref" {
				refs = append(refs, s)
			} else {
				refs = append(refs, collectRefs(y)...)
			}
		}
	case []any:
		for _, y := range x {
			refs = append(refs, collectRefs(y)...)
		}
	}
	return refs
}

// jsonFields returns the sorted JSON names of a struct's fields.
func jsonFieldNames(typ reflect.Type) []string {
	var names []string
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

func asObject(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func sortedKeys(m map[string]any) []string {
	return slices.Sorted(maps.Keys(m))
}

func asStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
