package fidius_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	fidius "github.com/fidius-host/libfidius_host/bindings/go"
)

// helloServer answers every request with "hello from <path?query>" and
// counts the requests it saw. httptest listens on 127.0.0.1.
type helloServer struct {
	*httptest.Server
	requests atomic.Int64
	port     int
}

func newHelloServer(t *testing.T) *helloServer {
	s := &helloServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		fmt.Fprintf(w, "hello from %s", r.URL.RequestURI())
	}))
	t.Cleanup(s.Close)
	_, port, err := net.SplitHostPort(s.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s.port, _ = strconv.Atoi(port)
	return s
}

// fetchArgs are the JSON arguments of fetch(method, url) for a path on s.
func (s *helloServer) fetchArgs(method, path string) string {
	return fmt.Sprintf(`[%q, "http://127.0.0.1:%d%s"]`, method, s.port, path)
}

// loadFetcher loads FetchGuest with the given per-load policy (nil: the
// host's).
func loadFetcher(t *testing.T, host *fidius.Host, policy *fidius.EgressPolicy) (*fidius.Plugin, error) {
	t.Helper()
	p, err := host.LoadPath(fixture(t, "wasm/fetch"), "FetchGuest",
		&fidius.LoadOptions{Interface: interfaceFile(t, "fetcher.toml"), EgressPolicy: policy})
	if err == nil {
		closeAtEnd(t, p)
	}
	return p, err
}

// wantDenied checks that a fetch was refused by the policy: an HTTP error
// the guest reports, not a trap.
func wantDenied(t *testing.T, p *fidius.Plugin, args string) {
	t.Helper()
	_, err := p.CallJSON("fetch", args)
	ferr := wantError(t, err, fidius.ErrPluginError, "")
	if ferr.PluginCode != "HTTP" || !strings.Contains(ferr.PluginMessage, "HttpRequestDenied") {
		t.Errorf("denied fetch: %+v", ferr)
	}
}

func TestEgressCallback(t *testing.T) {
	server := newHelloServer(t)
	liveBefore := fidius.LiveEgressCallbacks()

	var mu sync.Mutex
	var seen []fidius.HTTPRequest
	policy, err := fidius.NewEgressPolicy(func(r *fidius.HTTPRequest) bool {
		mu.Lock()
		seen = append(seen, *r)
		mu.Unlock()
		return r.Method == "GET"
	})
	if err != nil {
		t.Fatal(err)
	}
	host, err := fidius.NewBuilder().EgressPolicy(policy).Build()
	if err != nil {
		t.Fatal(err)
	}
	policy.Close() // the builder took its own reference
	policy.Close()
	fetcher, err := host.LoadPath(fixture(t, "wasm/fetch"), "FetchGuest",
		&fidius.LoadOptions{Interface: interfaceFile(t, "fetcher.toml")})
	if err != nil {
		t.Fatal(err)
	}

	jsonIs(t, fetcher, "fetch", server.fetchArgs("GET", "/a?b=c"), `"200 hello from /a?b=c"`)
	if server.requests.Load() != 1 || len(seen) != 1 {
		t.Fatalf("%d requests served, %d seen by the callback", server.requests.Load(), len(seen))
	}
	r := seen[0]
	authority := fmt.Sprintf("127.0.0.1:%d", server.port)
	if r.Plugin != "FetchGuest" || r.Method != "GET" || r.Scheme != "http" || r.Authority != authority ||
		r.Host != "127.0.0.1" || int(r.Port) != server.port || r.PathWithQuery != "/a?b=c" ||
		r.URL() != "http://"+authority+"/a?b=c" {
		t.Errorf("callback saw %+v", r)
	}
	if value, ok := r.Header("X-Fidius-Fixture"); !ok || value != "fetch" {
		t.Errorf("header x-fidius-fixture = %q (%v) in %+v", value, ok, r.Headers)
	}
	if denied, err := fetcher.DeniedRequests(); err != nil || len(denied) != 0 {
		t.Errorf("DeniedRequests() = %+v, %v", denied, err)
	}

	// The callback denies the POST: nothing reaches the server.
	wantDenied(t, fetcher, server.fetchArgs("POST", "/upload"))
	if server.requests.Load() != 1 || len(seen) != 2 || seen[1].Method != "POST" {
		t.Errorf("after the denied POST: %d served, callback saw %+v", server.requests.Load(), seen)
	}
	denied, err := fetcher.DeniedRequests()
	want := fidius.DeniedRequest{Method: "POST", URL: "http://" + authority + "/upload", Reason: "denied by the egress policy"}
	if err != nil || len(denied) != 1 || denied[0] != want {
		t.Errorf("DeniedRequests() = %+v, %v; want [%+v]", denied, err, want)
	}
	jsonIs(t, fetcher, "fetch", server.fetchArgs("GET", "/again"), `"200 hello from /again"`)

	// The Go function is released when the last user of the policy goes.
	host.Close()
	if fidius.LiveEgressCallbacks() != liveBefore+1 {
		t.Errorf("%d live callbacks while the plugin lives, want %d", fidius.LiveEgressCallbacks(), liveBefore+1)
	}
	fetcher.Close()
	if fidius.LiveEgressCallbacks() != liveBefore {
		t.Errorf("%d live callbacks after everything closed, want %d", fidius.LiveEgressCallbacks(), liveBefore)
	}
}

func TestEgressAllowList(t *testing.T) {
	server := newHelloServer(t)
	other := server.port + 1
	if server.port == 65535 {
		other = 1
	}
	allowed, err := fidius.NewEgressAllowList("*.example.com", fmt.Sprintf("127.0.0.1:%d", server.port))
	if err != nil {
		t.Fatal(err)
	}
	defer allowed.Close()
	elsewhere, err := fidius.NewEgressAllowList(fmt.Sprintf("127.0.0.1:%d", other))
	if err != nil {
		t.Fatal(err)
	}
	defer elsewhere.Close()
	none, err := fidius.NewEgressAllowList()
	if err != nil {
		t.Fatal(err)
	}
	defer none.Close()

	// The host denies everything; a load's own policy overrides it.
	host := newHost(t, func(b *fidius.Builder) { b.EgressPolicy(none) })
	denyAll, err := loadFetcher(t, host, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantDenied(t, denyAll, server.fetchArgs("GET", "/x"))

	allowing, err := loadFetcher(t, host, allowed)
	if err != nil {
		t.Fatal(err)
	}
	jsonIs(t, allowing, "fetch", server.fetchArgs("GET", "/ok"), `"200 hello from /ok"`)

	otherPort, err := loadFetcher(t, host, elsewhere)
	if err != nil {
		t.Fatal(err)
	}
	wantDenied(t, otherPort, server.fetchArgs("GET", "/x"))
	if server.requests.Load() != 1 {
		t.Errorf("%d requests reached the server, want 1", server.requests.Load())
	}

	_, err = fidius.NewEgressAllowList("*")
	wantError(t, err, fidius.ErrInvalidArgument, `"*"`)
	_, err = fidius.NewEgressAllowList("\xff")
	wantError(t, err, fidius.ErrInvalidUTF8, "")
	_, err = fidius.NewEgressAllowList("a\x00b")
	wantError(t, err, fidius.ErrInvalidArgument, "NUL")
	_, err = fidius.NewEgressAllowList("example.com", "")
	wantError(t, err, fidius.ErrInvalidArgument, "no host")
	// Each pattern is passed with its length: a pattern that is the prefix
	// of a longer string is just the prefix.
	long := "example.com:8080 and more"
	if _, err = fidius.NewEgressAllowList(long[:16]); err != nil {
		t.Errorf("a substring pattern: %v", err)
	}
}

func TestEgressFailsClosed(t *testing.T) {
	server := newHelloServer(t)

	// No policy at all: a guest that may send HTTP is not loaded.
	_, err := loadFetcher(t, newHost(t, nil), nil)
	wantError(t, err, fidius.ErrNoEgressPolicy, "")

	// A panicking callback denies.
	liveBefore := fidius.LiveEgressCallbacks()
	panicking, err := fidius.NewEgressPolicy(func(*fidius.HTTPRequest) bool { panic("no decision") })
	if err != nil {
		t.Fatal(err)
	}
	p, err := loadFetcher(t, newHost(t, nil), panicking)
	if err != nil {
		t.Fatal(err)
	}
	panicking.Close()
	wantDenied(t, p, server.fetchArgs("GET", "/panic"))
	if server.requests.Load() != 0 {
		t.Errorf("a request got through a panicking callback")
	}
	p.Close()
	if fidius.LiveEgressCallbacks() != liveBefore {
		t.Errorf("the panicking callback was not released")
	}

	_, err = fidius.NewEgressPolicy(nil)
	wantError(t, err, fidius.ErrNullArgument, "")

	closed, err := fidius.NewEgressAllowList()
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	_, err = fidius.NewBuilder().EgressPolicy(closed).Build()
	wantError(t, err, fidius.ErrMisuse, "egress policy is closed")
	_, err = loadFetcher(t, newHost(t, nil), closed)
	wantError(t, err, fidius.ErrMisuse, "egress policy is closed")
}

// Several goroutines fetch through one plugin while its callback runs.
func TestEgressConcurrent(t *testing.T) {
	server := newHelloServer(t)
	var calls atomic.Int64
	policy, err := fidius.NewEgressPolicy(func(r *fidius.HTTPRequest) bool {
		calls.Add(1)
		return r.Method == "GET"
	})
	if err != nil {
		t.Fatal(err)
	}
	defer policy.Close()
	// A fresh instance per call, so the calls (and the callback) really run
	// at the same time rather than one after another on one instance.
	host := newHost(t, func(b *fidius.Builder) { b.EgressPolicy(policy).WasmFreshInstancePerCall(true) })
	fetcher, err := loadFetcher(t, host, nil)
	if err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	for worker := range 4 {
		wg.Go(func() {
			for i := range 5 {
				path := fmt.Sprintf("/t%d-%d", worker, i)
				got, err := fetcher.CallJSON("fetch", server.fetchArgs("GET", path))
				if want := `"200 hello from ` + path + `"`; err != nil || got != want {
					t.Errorf("fetch %s = %s, %v", path, got, err)
				}
			}
		})
	}
	wg.Wait()
	if calls.Load() != 20 || server.requests.Load() != 20 {
		t.Errorf("%d callback calls, %d requests served; want 20 each", calls.Load(), server.requests.Load())
	}
}

// tokenServer answers 401 (with a www-authenticate header) unless the
// request carries "authorization: Bearer fresh", and 200 "welcome" then. It
// records the requests it saw.
type tokenServer struct {
	*httptest.Server
	port int

	mu       sync.Mutex
	requests []http.Header
}

func newTokenServer(t *testing.T) *tokenServer {
	s := &tokenServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.Header.Clone())
		s.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer fresh" {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, "stale token")
			return
		}
		fmt.Fprint(w, "welcome")
	}))
	t.Cleanup(s.Close)
	_, port, err := net.SplitHostPort(s.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s.port, _ = strconv.Atoi(port)
	return s
}

func (s *tokenServer) seen() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]http.Header(nil), s.requests...)
}

// responseSeen is what a Response rule saw of one response.
type responseSeen struct {
	status         int
	retryAvailable bool
	authorization  string
}

// The HTTP rule sets a credential (stale, then fresh) and removes a header;
// the Response rule retries once on 401, and the retry carries the fresh
// credential.
func TestEgressHeaderEditsAndRetry(t *testing.T) {
	server := newTokenServer(t)
	liveBefore := fidius.LiveEgressCallbacks()

	var (
		mu           sync.Mutex
		decisions    int
		retained     *fidius.HTTPRequest
		hostErr      error
		nulValueErr  error
		nulNameErr   error
		observed     []responseSeen
		responseErrs []error
		wwwAuth      string
		fixtureSent  bool
	)
	policy, err := fidius.NewEgressRules(fidius.EgressRules{
		HTTP: func(r *fidius.HTTPRequest) bool {
			mu.Lock()
			defer mu.Unlock()
			decisions++
			token := "Bearer fresh"
			if decisions == 1 {
				token = "Bearer stale"
				retained = r
				hostErr = r.SetHeader("Host", "elsewhere.example")
				nulValueErr = r.SetHeader("x-trace", "a\x00b")
				nulNameErr = r.RemoveHeader("x-\x00trace")
			}
			if err := r.SetHeader("Authorization", token); err != nil {
				t.Errorf("SetHeader(Authorization): %v", err)
			}
			if err := r.RemoveHeader("x-fidius-fixture"); err != nil {
				t.Errorf("RemoveHeader(x-fidius-fixture): %v", err)
			}
			// The rule sees the guest's headers, not its own edits.
			if _, ok := r.Header("authorization"); ok {
				t.Errorf("the HTTP rule sees an authorization header: %+v", r.Headers)
			}
			return true
		},
		Response: func(r *fidius.HTTPRequest, resp *fidius.HTTPResponse) fidius.ResponseDirective {
			mu.Lock()
			defer mu.Unlock()
			authorization, _ := r.Header("Authorization")
			observed = append(observed, responseSeen{resp.Status, resp.RetryAvailable, authorization})
			if _, ok := r.Header("x-fidius-fixture"); ok {
				fixtureSent = true
			}
			if resp.Status == http.StatusUnauthorized {
				wwwAuth, _ = resp.Header("www-authenticate")
			}
			// The request as sent cannot be edited.
			responseErrs = append(responseErrs, r.SetHeader("authorization", "Bearer other"))
			if resp.Status == http.StatusUnauthorized {
				return fidius.ResponseRetryOnce
			}
			return fidius.ResponseForward
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	fetcher, err := loadFetcher(t, newHost(t, nil), policy)
	if err != nil {
		t.Fatal(err)
	}
	policy.Close()

	args := fmt.Sprintf(`["GET", "http://127.0.0.1:%d/private"]`, server.port)
	jsonIs(t, fetcher, "fetch", args, `"200 welcome"`)

	mu.Lock()
	defer mu.Unlock()
	requests := server.seen()
	if len(requests) != 2 {
		t.Fatalf("the server saw %d requests, want 2", len(requests))
	}
	for i, want := range []string{"Bearer stale", "Bearer fresh"} {
		if got := requests[i].Get("Authorization"); got != want {
			t.Errorf("request %d: authorization %q, want %q", i, got, want)
		}
		if got := requests[i].Get("X-Fidius-Fixture"); got != "" {
			t.Errorf("request %d: x-fidius-fixture %q was not removed", i, got)
		}
	}
	if decisions != 2 {
		t.Errorf("the HTTP rule ran %d times, want 2", decisions)
	}
	want := []responseSeen{{401, true, "Bearer stale"}, {200, false, "Bearer fresh"}}
	if fmt.Sprint(observed) != fmt.Sprint(want) {
		t.Errorf("the Response rule saw %+v, want %+v", observed, want)
	}
	if fixtureSent {
		t.Errorf("the Response rule saw x-fidius-fixture, which the HTTP rule removed")
	}
	if wwwAuth != `Bearer error="invalid_token"` {
		t.Errorf("www-authenticate of the 401 = %q", wwwAuth)
	}

	wantError(t, hostErr, fidius.ErrInvalidArgument, "host")
	wantError(t, nulValueErr, fidius.ErrInvalidArgument, "NUL")
	wantError(t, nulNameErr, fidius.ErrInvalidArgument, "NUL")
	if len(responseErrs) != 2 {
		t.Fatalf("%d response errors, want 2", len(responseErrs))
	}
	for _, err := range responseErrs {
		wantError(t, err, fidius.ErrMisuse, "response hook")
	}

	// A request kept past its rule's return can no longer be edited: an
	// error, not a crash.
	if retained == nil {
		t.Fatal("no request retained")
	}
	wantError(t, retained.SetHeader("authorization", "Bearer late"), fidius.ErrMisuse, "returned")
	wantError(t, retained.RemoveHeader("authorization"), fidius.ErrMisuse, "returned")
	// Nor can a request the rule did not get.
	wantError(t, (&fidius.HTTPRequest{}).SetHeader("a", "b"), fidius.ErrMisuse, "")

	fetcher.Close()
	if fidius.LiveEgressCallbacks() != liveBefore {
		t.Errorf("%d live callbacks after everything closed, want %d", fidius.LiveEgressCallbacks(), liveBefore)
	}
}

// A panicking Response rule forwards the response; RetryOnce on a response
// whose retry is not available forwards it too; a retry the HTTP rule
// denies fails in the guest.
func TestEgressResponseRule(t *testing.T) {
	server := newTokenServer(t)
	args := fmt.Sprintf(`["GET", "http://127.0.0.1:%d/private"]`, server.port)
	allow := func(*fidius.HTTPRequest) bool { return true }

	panicking, err := fidius.NewEgressRules(fidius.EgressRules{
		HTTP:     allow,
		Response: func(*fidius.HTTPRequest, *fidius.HTTPResponse) fidius.ResponseDirective { panic("no directive") },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer panicking.Close()
	p, err := loadFetcher(t, newHost(t, nil), panicking)
	if err != nil {
		t.Fatal(err)
	}
	jsonIs(t, p, "fetch", args, `"401 stale token"`)
	if n := len(server.seen()); n != 1 {
		t.Errorf("the server saw %d requests after a panicking Response rule, want 1", n)
	}

	// Always RetryOnce: the request is sent twice, no more.
	var retries atomic.Int64
	always, err := fidius.NewEgressRules(fidius.EgressRules{
		HTTP: allow,
		Response: func(_ *fidius.HTTPRequest, resp *fidius.HTTPResponse) fidius.ResponseDirective {
			retries.Add(1)
			return fidius.ResponseRetryOnce
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer always.Close()
	p, err = loadFetcher(t, newHost(t, nil), always)
	if err != nil {
		t.Fatal(err)
	}
	jsonIs(t, p, "fetch", args, `"401 stale token"`)
	if n := len(server.seen()); n != 3 || retries.Load() != 2 {
		t.Errorf("%d requests served in all, %d responses seen; want 3 and 2", n, retries.Load())
	}

	// The HTTP rule denies the retry.
	var decisions atomic.Int64
	denyRetry, err := fidius.NewEgressRules(fidius.EgressRules{
		HTTP: func(*fidius.HTTPRequest) bool { return decisions.Add(1) == 1 },
		Response: func(*fidius.HTTPRequest, *fidius.HTTPResponse) fidius.ResponseDirective {
			return fidius.ResponseRetryOnce
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer denyRetry.Close()
	p, err = loadFetcher(t, newHost(t, nil), denyRetry)
	if err != nil {
		t.Fatal(err)
	}
	wantDenied(t, p, args)
	if n := len(server.seen()); n != 4 || decisions.Load() != 2 {
		t.Errorf("%d requests served in all, %d decisions; want 4 and 2", n, decisions.Load())
	}

	if fidius.ResponseForward.String() != "Forward" || fidius.ResponseRetryOnce.String() != "RetryOnce" ||
		fidius.ResponseDirective(7).String() != "ResponseDirective(7)" {
		t.Errorf("ResponseDirective strings: %v %v %v", fidius.ResponseForward, fidius.ResponseRetryOnce, fidius.ResponseDirective(7))
	}
}
