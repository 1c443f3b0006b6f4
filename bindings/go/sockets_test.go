package fidius_test

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	fidius "github.com/fidius-host/libfidius_host/bindings/go"
)

// echoServer answers each TCP connection with "echo: " and everything it
// read until the client half-closed. It listens on 127.0.0.1.
type echoServer struct {
	listener net.Listener
	port     int
}

func newEchoServer(t *testing.T) *echoServer {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{listener: listener, port: listener.Addr().(*net.TCPAddr).Port}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return // closed
			}
			wg.Go(func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
				message, _ := io.ReadAll(conn)
				_, _ = conn.Write(append([]byte("echo: "), message...))
			})
		}
	})
	t.Cleanup(func() {
		listener.Close()
		wg.Wait()
	})
	return s
}

// addr is "host:port" of the server with the given host.
func (s *echoServer) addr(host string) string {
	return net.JoinHostPort(host, strconv.Itoa(s.port))
}

// exchangeArgs are the JSON arguments of tcp_exchange(addr, message).
func exchangeArgs(addr, message string) string {
	return fmt.Sprintf(`[%q, %q]`, addr, message)
}

// loadDialer loads SocketGuest with the given per-load policy (nil: the
// host's, and the host has none).
func loadDialer(t *testing.T, policy *fidius.EgressPolicy) (*fidius.Plugin, error) {
	t.Helper()
	p, err := newHost(t, nil).LoadPath(fixture(t, "wasm/dialer"), "SocketGuest",
		&fidius.LoadOptions{Interface: interfaceFile(t, "dialer.toml"), EgressPolicy: policy})
	if err == nil {
		closeAtEnd(t, p)
	}
	return p, err
}

// dialerWith returns a function that takes what a policy constructor
// returned and loads SocketGuest with that policy, failing the test on
// either error; the policy is closed (the plugin keeps its own reference).
func dialerWith(t *testing.T) func(*fidius.EgressPolicy, error) *fidius.Plugin {
	return func(policy *fidius.EgressPolicy, err error) *fidius.Plugin {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer policy.Close()
		p, err := loadDialer(t, policy)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
}

// wantSocketError checks that method(args) fails with the guest's
// PluginError SOCKET.
func wantSocketError(t *testing.T, p *fidius.Plugin, method, args string) {
	t.Helper()
	_, err := p.CallJSON(method, args)
	ferr := wantError(t, err, fidius.ErrPluginError, "")
	if ferr.PluginCode != "SOCKET" {
		t.Errorf("%s(%s): %+v, want PluginError SOCKET", method, args, ferr)
	}
}

// socketLog records what a socket rule saw.
type socketLog struct {
	mu      sync.Mutex
	targets []fidius.SocketTarget
}

func (l *socketLog) add(target *fidius.SocketTarget) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.targets = append(l.targets, *target)
}

func (l *socketLog) seen() []fidius.SocketTarget {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]fidius.SocketTarget(nil), l.targets...)
}

func TestSocketAllowList(t *testing.T) {
	server := newEchoServer(t)
	addr := server.addr("127.0.0.1")
	p := dialerWith(t)(fidius.NewEgressAllowList(addr))
	jsonIs(t, p, "tcp_exchange", exchangeArgs(addr, "hello"), `"echo: hello"`)
	if denied, err := p.DeniedRequests(); err != nil || len(denied) != 0 {
		t.Errorf("DeniedRequests() = %+v, %v", denied, err)
	}

	// Another port of the same (special) address is not named.
	other := newEchoServer(t)
	wantSocketError(t, p, "tcp_exchange", exchangeArgs(other.addr("127.0.0.1"), "hello"))
	denied, err := p.DeniedRequests()
	if err != nil || len(denied) != 1 || denied[0].Method != "TCP" ||
		denied[0].URL != "tcp://"+other.addr("127.0.0.1") || denied[0].Reason == "" {
		t.Errorf("DeniedRequests() = %+v, %v", denied, err)
	}
}

func TestSocketUDP(t *testing.T) {
	receiver, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer receiver.Close()
	addr := receiver.LocalAddr().String()
	p := dialerWith(t)(fidius.NewEgressAllowList(addr))
	if _, err := p.CallJSON("udp_send", exchangeArgs(addr, "ping")); err != nil {
		t.Fatalf("udp_send: %v", err)
	}
	if err := receiver.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _, err := receiver.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("received %q, %v; want \"ping\"", buf[:n], err)
	}

	// A port the list does not name gets no datagram.
	other, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	elsewhere := other.LocalAddr().String()
	wantSocketError(t, p, "udp_send", exchangeArgs(elsewhere, "ping"))
	denied, err := p.DeniedRequests()
	if err != nil || len(denied) != 1 || denied[0].Method != "UDP" || denied[0].URL != "udp://"+elsewhere {
		t.Errorf("DeniedRequests() = %+v, %v", denied, err)
	}
}

func TestSocketRule(t *testing.T) {
	server := newEchoServer(t)
	addr := server.addr("127.0.0.1")
	liveBefore := fidius.LiveEgressCallbacks()

	var log socketLog
	var allow sync.Mutex
	allowPort := uint16(server.port)
	p := dialerWith(t)(fidius.NewEgressRules(fidius.EgressRules{
		Socket: func(target *fidius.SocketTarget) bool {
			log.add(target)
			allow.Lock()
			defer allow.Unlock()
			return target.Port == allowPort
		},
	}))

	jsonIs(t, p, "tcp_exchange", exchangeArgs(addr, "hello"), `"echo: hello"`)
	seen := log.seen()
	want := fidius.SocketTarget{Plugin: "SocketGuest", Protocol: fidius.TCP, Address: "127.0.0.1",
		Port: uint16(server.port), Special: true}
	if len(seen) != 1 || seen[0] != want {
		t.Fatalf("the rule saw %+v, want [%+v]", seen, want)
	}
	if seen[0].Protocol.String() != "TCP" || fidius.UDP.String() != "UDP" {
		t.Errorf("protocol names %q, %q", seen[0].Protocol, fidius.UDP)
	}

	// Denied: the guest's connect fails, and the denial is logged.
	allow.Lock()
	allowPort = 0
	allow.Unlock()
	wantSocketError(t, p, "tcp_exchange", exchangeArgs(addr, "hello"))
	denied, err := p.DeniedRequests()
	if err != nil || len(denied) != 1 || denied[0].Method != "TCP" || denied[0].URL != "tcp://"+addr ||
		denied[0].Reason == "" {
		t.Fatalf("DeniedRequests() = %+v, %v", denied, err)
	}

	// No HTTP or DNS function: the plugin cannot look names up.
	wantSocketError(t, p, "tcp_exchange", exchangeArgs(server.addr("localhost"), "hello"))

	// The functions are released with the last user of the policy.
	p.Close()
	if fidius.LiveEgressCallbacks() != liveBefore {
		t.Errorf("%d live callbacks after the plugin closed, want %d", fidius.LiveEgressCallbacks(), liveBefore)
	}
}

func TestSocketRuleByName(t *testing.T) {
	server := newEchoServer(t)

	var log socketLog
	var mu sync.Mutex
	var lookups []string
	p := dialerWith(t)(fidius.NewEgressRules(fidius.EgressRules{
		DNS: func(plugin, name string) bool {
			mu.Lock()
			lookups = append(lookups, plugin+" "+name)
			mu.Unlock()
			return name == "localhost"
		},
		// localhost by name, and 127.0.0.1 itself (asked with no host name).
		Socket: func(target *fidius.SocketTarget) bool {
			log.add(target)
			return target.Host == "localhost" || (target.Host == "" && target.Address == "127.0.0.1")
		},
	}))

	jsonIs(t, p, "tcp_exchange", exchangeArgs(server.addr("localhost"), "by name"), `"echo: by name"`)
	byName := false
	for _, target := range log.seen() {
		if target.Host == "localhost" && target.Protocol == fidius.TCP && target.Port == uint16(server.port) &&
			target.Address == "127.0.0.1" && target.Special {
			byName = true
		}
	}
	if !byName {
		t.Errorf("the socket rule never saw localhost:%d by name: %+v", server.port, log.seen())
	}
	mu.Lock()
	if len(lookups) == 0 || lookups[0] != "SocketGuest localhost" {
		t.Errorf("lookups %q, want [\"SocketGuest localhost\"]", lookups)
	}
	mu.Unlock()

	// Another name is not looked up: the denial is a DNS one.
	wantSocketError(t, p, "tcp_exchange", exchangeArgs(server.addr("not-localhost.invalid"), "x"))
	denied, err := p.DeniedRequests()
	if err != nil || len(denied) == 0 {
		t.Fatalf("DeniedRequests() = %+v, %v", denied, err)
	}
	if last := denied[len(denied)-1]; last.Method != "DNS" || last.URL != "dns://not-localhost.invalid" ||
		last.Reason == "" {
		t.Errorf("last denial %+v", last)
	}
}

func TestSocketFailsClosed(t *testing.T) {
	server := newEchoServer(t)
	addr := server.addr("127.0.0.1")

	// No policy at all: a guest that may open sockets is not loaded.
	_, err := loadDialer(t, nil)
	wantError(t, err, fidius.ErrNoEgressPolicy, "")

	// No functions: everything is denied.
	p := dialerWith(t)(fidius.NewEgressRules(fidius.EgressRules{}))
	wantSocketError(t, p, "tcp_exchange", exchangeArgs(addr, "hello"))

	// An HTTP-only policy opens no socket.
	p = dialerWith(t)(fidius.NewEgressPolicy(func(*fidius.HTTPRequest) bool { return true }))
	wantSocketError(t, p, "tcp_exchange", exchangeArgs(addr, "hello"))

	// Panicking functions deny.
	liveBefore := fidius.LiveEgressCallbacks()
	p = dialerWith(t)(fidius.NewEgressRules(fidius.EgressRules{
		Socket: func(*fidius.SocketTarget) bool { panic("no decision") },
		DNS:    func(string, string) bool { panic("no decision") },
	}))
	wantSocketError(t, p, "tcp_exchange", exchangeArgs(addr, "hello"))
	wantSocketError(t, p, "tcp_exchange", exchangeArgs(server.addr("localhost"), "hello"))
	p.Close()
	if fidius.LiveEgressCallbacks() != liveBefore {
		t.Errorf("the panicking functions were not released")
	}
}
