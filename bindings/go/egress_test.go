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
