//! Outbound network policy: which HTTP requests a sandboxed plugin may send
//! and which sockets it may open.
//!
//! A policy sees each request, and each socket target (TCP connect, UDP
//! datagram), before anything goes on the wire and answers allow or deny;
//! it may set headers on a request it allows (credentials), and, when it
//! observes responses, have a request sent once more after seeing the
//! response's head (a fresh credential after a 401).
//! Two kinds: functions (the host's own rules, e.g. C callbacks) and an
//! allow-list of `host[:port]` patterns. Special addresses (loopback,
//! private, link-local, multicast, unspecified, broadcast) are reachable by
//! a socket only when the policy allows that address itself. What a policy
//! denies is recorded per plugin in a [`DenialLog`] the host can read.

use crate::error::{Error, Result, Status};
use std::collections::VecDeque;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

/// One outbound request, as a policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// The name of the plugin sending it.
    pub plugin: &'a str,
    /// `GET`, `POST`, ... as sent.
    pub method: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// As the guest wrote it: `host`, `host:port`, `[v6]:port`.
    pub authority: &'a str,
    /// The host alone, lowercase, without brackets for IPv6.
    pub host: &'a str,
    /// The port, explicit or the scheme's default.
    pub port: u16,
    /// Path and query, `/` when the guest gave none.
    pub path_with_query: &'a str,
    /// Header names (lowercase) and values (bytes as sent).
    pub headers: &'a [(&'a str, &'a [u8])],
}

impl HttpRequest<'_> {
    /// `METHOD scheme://authority/path`, for logs and messages.
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.path_with_query)
    }
}

/// The transport of a socket target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketProtocol {
    /// An outbound TCP connection.
    Tcp,
    /// An outbound UDP datagram (or a connected UDP socket).
    Udp,
}

impl SocketProtocol {
    /// `tcp` or `udp`.
    pub fn name(self) -> &'static str {
        match self {
            SocketProtocol::Tcp => "tcp",
            SocketProtocol::Udp => "udp",
        }
    }
}

/// One socket target, as a policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct SocketTarget<'a> {
    /// The name of the plugin opening it.
    pub plugin: &'a str,
    /// TCP or UDP.
    pub protocol: SocketProtocol,
    /// The host name the guest dialed, when its lookup gave this address
    /// (`None`: the guest dialed an address, or one no lookup gave it).
    pub host: Option<&'a str>,
    /// The address the socket would reach.
    pub addr: SocketAddr,
}

/// One name lookup of a guest (`wasi:sockets/ip-name-lookup`), as a policy
/// sees it.
#[derive(Debug, Clone, Copy)]
pub struct DnsLookup<'a> {
    /// The name of the plugin looking it up.
    pub plugin: &'a str,
    /// The name, lowercase, without a trailing dot.
    pub name: &'a str,
}

/// The head of a response to a request a policy allowed, as the policy's
/// response hook sees it.
#[derive(Debug, Clone, Copy)]
pub struct HttpResponse<'a> {
    /// The status code.
    pub status: u16,
    /// Header names (lowercase) and values (bytes as received).
    pub headers: &'a [(&'a str, &'a [u8])],
    /// Whether answering [`ResponseDirective::RetryOnce`] would send the
    /// request again: false on the response to a retry, and when the
    /// request's body could not be kept for a replay (over
    /// [`REPLAY_LIMIT`], or still being written when the response came).
    pub retry_available: bool,
}

/// The most bytes of a request body kept for a retry; a longer body is sent
/// once.
pub const REPLAY_LIMIT: usize = 64 * 1024;

/// What a policy's response hook wants done with a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseDirective {
    /// The guest gets the response.
    Forward,
    /// The response is dropped and the request, as the guest made it, is
    /// asked about again (so a fresh credential can be set) and sent once
    /// more; the guest gets the second response whatever it is. Ignored when
    /// the retry is not available.
    RetryOnce,
}

/// Headers a policy sets on a request it allows, applied in order after
/// the guest's own (a set replaces every value the guest gave the name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderEdits {
    edits: Vec<(String, Option<Vec<u8>>)>,
}

/// Headers that frame the message or route it, which a policy may not set:
/// the request it decided on would not be the request sent.
const UNEDITABLE_HEADERS: [&str; 10] =
    ["host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "upgrade", "te", "trailer", "http2-settings"];

/// The most header edits one decision may make.
const MAX_HEADER_EDITS: usize = 64;

impl HeaderEdits {
    /// Sets header `name` to `value`, replacing what the guest gave it.
    pub fn set(&mut self, name: &str, value: &[u8]) -> Result<()> {
        let name = Self::checked_name(name)?;
        // RFC 9110 field-value: visible ASCII, obs-text, spaces and tabs.
        if let Some(bad) = value.iter().find(|&&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(Error::new(
                Status::InvalidArgument,
                format!("the value of header \"{name}\" contains the control byte 0x{bad:02x} (expected visible characters, spaces and tabs)"),
            ));
        }
        self.push(name, Some(value.to_vec()))
    }

    /// Removes header `name` from the request.
    pub fn remove(&mut self, name: &str) -> Result<()> {
        let name = Self::checked_name(name)?;
        self.push(name, None)
    }

    /// The edits in order: a name and its value, `None` to remove it.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&[u8]>)> {
        self.edits.iter().map(|(name, value)| (name.as_str(), value.as_deref()))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }

    fn push(&mut self, name: String, value: Option<Vec<u8>>) -> Result<()> {
        if self.edits.len() == MAX_HEADER_EDITS {
            return Err(Error::new(Status::InvalidArgument, format!("more than {MAX_HEADER_EDITS} header edits for one request (the most a policy may make)")));
        }
        self.edits.push((name, value));
        Ok(())
    }

    /// `name` lowercase, when it is an HTTP token a policy may set.
    fn checked_name(name: &str) -> Result<String> {
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || name.len() > 256 || !name.bytes().all(token) {
            return Err(Error::new(
                Status::InvalidArgument,
                format!("header name \"{}\" is not an HTTP token (expected 1 to 256 letters, digits or !#$%&'*+-.^_`|~)", crate::error::Quoted(name)),
            ));
        }
        let name = name.to_ascii_lowercase();
        if UNEDITABLE_HEADERS.contains(&name.as_str()) {
            return Err(Error::new(
                Status::InvalidArgument,
                format!("header \"{name}\" frames or routes the request and is not set by a policy"),
            ));
        }
        Ok(name)
    }
}

type Decide = dyn Fn(&HttpRequest<'_>, &mut HeaderEdits) -> bool + Send + Sync;
type ObserveResponse = dyn Fn(&HttpRequest<'_>, &HttpResponse<'_>) -> ResponseDirective + Send + Sync;
type DecideSocket = dyn Fn(&SocketTarget<'_>) -> bool + Send + Sync;
type DecideDns = dyn Fn(&DnsLookup<'_>) -> bool + Send + Sync;

/// Decides which outbound requests go out and which sockets open. Cheap to
/// clone (shared).
#[derive(Clone)]
pub struct EgressPolicy {
    decide: Arc<Decide>,
    /// `None`: responses go to the guest unobserved.
    observe_response: Option<Arc<ObserveResponse>>,
    /// `None`: no socket opens (a policy for HTTP only).
    decide_socket: Option<Arc<DecideSocket>>,
    /// `None`: no name is looked up (guests dial addresses).
    decide_dns: Option<Arc<DecideDns>>,
    description: Arc<str>,
}

impl fmt::Debug for EgressPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EgressPolicy").field(&self.description).finish()
    }
}

impl EgressPolicy {
    /// A policy that asks `decide` about every request (`true` allows).
    /// `decide` runs on the thread that called the plugin, during the call.
    pub fn from_fn(description: &str, decide: impl Fn(&HttpRequest<'_>) -> bool + Send + Sync + 'static) -> EgressPolicy {
        EgressPolicy::decorating(description, move |request, _| decide(request))
    }

    /// A policy that asks `decide` about every request (`true` allows); the
    /// headers it sets in its [`HeaderEdits`] are applied to an allowed
    /// request before it is sent. `decide` runs on the thread that called
    /// the plugin, during the call (for a retry: where the response hook
    /// runs).
    pub fn decorating(
        description: &str,
        decide: impl Fn(&HttpRequest<'_>, &mut HeaderEdits) -> bool + Send + Sync + 'static,
    ) -> EgressPolicy {
        EgressPolicy {
            decide: Arc::new(decide),
            observe_response: None,
            decide_socket: None,
            decide_dns: None,
            description: description.into(),
        }
    }

    /// This policy, shown the head of every response to a request it
    /// allowed before the guest sees it, as sent (with the headers it set),
    /// answering whether to forward it or retry once. `observe` runs on one
    /// of the runtime's I/O threads while the call waits for the response.
    pub fn with_responses(
        mut self,
        observe: impl Fn(&HttpRequest<'_>, &HttpResponse<'_>) -> ResponseDirective + Send + Sync + 'static,
    ) -> EgressPolicy {
        self.observe_response = Some(Arc::new(observe));
        self
    }

    /// This policy, deciding socket targets with `decide` (`true` allows);
    /// without one, every socket is denied. `decide` runs on the thread
    /// that called the plugin, during the call.
    pub fn with_sockets(mut self, decide: impl Fn(&SocketTarget<'_>) -> bool + Send + Sync + 'static) -> EgressPolicy {
        self.decide_socket = Some(Arc::new(decide));
        self
    }

    /// This policy, deciding the name lookups of guests that open sockets
    /// with `decide` (`true` allows); without one, no name is looked up.
    pub fn with_dns(mut self, decide: impl Fn(&DnsLookup<'_>) -> bool + Send + Sync + 'static) -> EgressPolicy {
        self.decide_dns = Some(Arc::new(decide));
        self
    }

    /// Allows requests whose host and port match one of `patterns`:
    /// `example.com`, `example.com:8080`, `*.example.com` (subdomains only),
    /// `127.0.0.1:9000`, `[::1]:9000`. Without a port any port matches. Names
    /// match names, not the addresses they resolve to. An empty list denies
    /// everything.
    pub fn allow_list<S: AsRef<str>>(patterns: &[S]) -> Result<EgressPolicy> {
        let patterns = patterns.iter().map(|p| HostPattern::parse(p.as_ref())).collect::<Result<Vec<_>>>()?;
        let description = format!(
            "allow-list [{}]",
            patterns.iter().map(|p| p.text.as_str()).collect::<Vec<_>>().join(", ")
        );
        let patterns: Arc<[HostPattern]> = patterns.into();
        let for_sockets = patterns.clone();
        let for_dns = patterns.clone();
        let policy = EgressPolicy::from_fn(&description, move |request| {
            patterns.iter().any(|p| p.matches(request.host, request.port))
        });
        // A socket target matches by the name the guest dialed, or by its
        // address written as a pattern would write it; port 0 (a lookup's
        // answer) by the address on any port.
        Ok(policy
            .with_sockets(move |target| {
                let address = target.addr.ip().to_canonical().to_string();
                let port = target.addr.port();
                for_sockets.iter().any(|p| {
                    target.host.is_some_and(|host| p.matches(host, port))
                        || (port == 0 && p.matches_host(&address))
                        || p.matches(&address, port)
                })
            })
            // A name is looked up when some pattern names it.
            .with_dns(move |lookup| for_dns.iter().any(|p| p.matches_host(lookup.name))))
    }

    /// Whether `request` may go out.
    pub fn allows(&self, request: &HttpRequest<'_>) -> bool {
        self.authorize(request).is_some()
    }

    /// The header edits to send `request` with, or `None` when it may not
    /// go out.
    pub fn authorize(&self, request: &HttpRequest<'_>) -> Option<HeaderEdits> {
        let mut edits = HeaderEdits::default();
        (self.decide)(request, &mut edits).then_some(edits)
    }

    /// Whether the policy sees responses (a request's body is then kept,
    /// up to [`REPLAY_LIMIT`], for a retry).
    pub fn observes_responses(&self) -> bool {
        self.observe_response.is_some()
    }

    /// What to do with `response` to `request` (as sent).
    pub fn on_response(&self, request: &HttpRequest<'_>, response: &HttpResponse<'_>) -> ResponseDirective {
        match &self.observe_response {
            Some(observe) => observe(request, response),
            None => ResponseDirective::Forward,
        }
    }

    /// Whether a socket may reach `target`, or why not. A special address
    /// needs the policy to allow the address itself (asked with no host
    /// name), so that a name the policy trusts cannot lead to one.
    pub fn allows_socket(&self, target: &SocketTarget<'_>) -> std::result::Result<(), &'static str> {
        let Some(decide) = &self.decide_socket else {
            return Err("the egress policy allows no sockets");
        };
        if !decide(target) {
            return Err("denied by the egress policy");
        }
        if is_special(target.addr.ip()) && target.host.is_some() && !decide(&SocketTarget { host: None, ..*target }) {
            return Err("a special address (loopback, private, link-local, multicast) the policy does not name");
        }
        Ok(())
    }

    /// Whether a guest may look `lookup.name` up, or why not.
    pub fn allows_dns(&self, lookup: &DnsLookup<'_>) -> std::result::Result<(), &'static str> {
        match &self.decide_dns {
            None => Err("the egress policy allows no name lookups"),
            Some(decide) if !decide(lookup) => Err("denied by the egress policy"),
            Some(_) => Ok(()),
        }
    }

    /// Whether a lookup's answer `ip` may reach the guest: any public
    /// address; a special one only when the policy allows that address
    /// itself (asked as a socket target with no name and port 0), so that
    /// a name cannot be pointed at the host's own network (DNS rebinding).
    pub fn allows_answer(&self, plugin: &str, protocol: SocketProtocol, ip: IpAddr) -> bool {
        if !is_special(ip) {
            return true;
        }
        let target = SocketTarget { plugin, protocol, host: None, addr: SocketAddr::new(ip.to_canonical(), 0) };
        self.decide_socket.as_ref().is_some_and(|decide| decide(&target))
    }

    /// What the policy is, for messages.
    pub fn description(&self) -> &str {
        &self.description
    }
}

/// One `host[:port]` pattern of an allow-list.
#[derive(Debug, Clone)]
struct HostPattern {
    text: String,
    host: HostMatch,
    port: Option<u16>,
}

#[derive(Debug, Clone)]
enum HostMatch {
    Exact(String),
    /// `*.suffix`: any name ending in `.suffix`, not `suffix` itself.
    Subdomains(String),
}

impl HostPattern {
    fn parse(text: &str) -> Result<HostPattern> {
        let invalid = |why: &str| {
            Error::new(
                Status::InvalidArgument,
                format!("allow-list pattern \"{}\": {why} (expected host, host:port, *.domain or [ipv6]:port)", crate::error::Quoted(text)),
            )
        };
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(|| invalid("unclosed '['"))?;
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':').ok_or_else(|| invalid("junk after ']'"))?)),
            }
        } else {
            match text.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            }
        };
        let port = port.map(|p| p.parse::<u16>().map_err(|_| invalid("the port is not a number from 0 to 65535"))).transpose()?;
        let bracketed = text.starts_with('[');
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        if host.contains(|c: char| c.is_whitespace() || c.is_control() || "/@?#[]".contains(c)) || (host.contains(':') && !bracketed) {
            return Err(invalid("not a host name (an IPv6 address goes in brackets)"));
        }
        let host = match host.strip_prefix("*.") {
            Some(suffix) if !suffix.is_empty() && !suffix.contains('*') => HostMatch::Subdomains(suffix.to_string()),
            _ if host.contains('*') => return Err(invalid("'*' may only start a pattern, as in *.example.com")),
            _ => HostMatch::Exact(host),
        };
        Ok(HostPattern { text: text.to_string(), host, port })
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        self.port.is_none_or(|p| p == port) && self.matches_host(host)
    }

    /// Whether the host part matches, whatever the port.
    fn matches_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        match &self.host {
            HostMatch::Exact(name) => host.eq_ignore_ascii_case(name),
            HostMatch::Subdomains(suffix) => {
                host.len() > suffix.len() + 1
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            }
        }
    }
}

/// Whether `ip` is an address a sandboxed guest reaches only when the
/// policy names it: loopback, private (RFC 1918, unique-local), link-local
/// (the cloud metadata address included), shared (100.64/10), multicast,
/// unspecified or broadcast; an IPv4-mapped IPv6 address as its IPv4 one.
pub fn is_special(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let shared = v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64;
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_multicast() || v4.is_unspecified() || v4.is_broadcast() || shared
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback() || v6.is_unspecified() || v6.is_multicast() || (first & 0xffc0) == 0xfe80 || (first & 0xfe00) == 0xfc00
        }
    }
}

/// A request (or socket) a policy denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeniedRequest {
    /// The HTTP method, or `TCP` / `UDP`.
    pub method: String,
    /// `scheme://authority/path?query`, or `tcp://ip:port` / `udp://ip:port`
    /// (`tcp://name (ip):port` when the guest dialed a name).
    pub url: String,
    /// Why it was denied.
    pub reason: String,
}

/// The most recent denied requests of one plugin.
#[derive(Debug, Default)]
pub struct DenialLog {
    entries: Mutex<VecDeque<DeniedRequest>>,
}

impl DenialLog {
    /// How many denials are kept; older ones are dropped.
    pub const CAPACITY: usize = 256;

    pub fn record(&self, request: &HttpRequest<'_>, reason: &str) {
        self.push(DeniedRequest { method: request.method.to_string(), url: request.url(), reason: reason.to_string() });
    }

    /// Records a denied name lookup.
    pub fn record_dns(&self, lookup: &DnsLookup<'_>, reason: &str) {
        self.push(DeniedRequest { method: "DNS".to_string(), url: format!("dns://{}", lookup.name), reason: reason.to_string() });
    }

    /// Records a denied socket target.
    pub fn record_socket(&self, target: &SocketTarget<'_>, reason: &str) {
        let protocol = target.protocol.name();
        let url = match target.host {
            Some(host) => format!("{protocol}://{host} ({})", target.addr),
            None => format!("{protocol}://{}", target.addr),
        };
        self.push(DeniedRequest { method: protocol.to_ascii_uppercase(), url, reason: reason.to_string() });
    }

    fn push(&self, denied: DeniedRequest) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() == Self::CAPACITY {
            entries.pop_front();
        }
        entries.push_back(denied);
    }

    /// The kept denials, oldest first.
    pub fn entries(&self) -> Vec<DeniedRequest> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(host: &str, port: u16) -> HttpRequest<'_> {
        HttpRequest {
            plugin: "p",
            method: "GET",
            scheme: "http",
            authority: host,
            host,
            port,
            path_with_query: "/",
            headers: &[],
        }
    }

    #[test]
    fn allow_list_patterns() {
        let policy = EgressPolicy::allow_list(&["api.example.com", "*.cdn.test", "127.0.0.1:8080", "[::1]:9000", "Mixed.Case"])
            .unwrap();
        let allowed = |host, port| policy.allows(&request(host, port));
        assert!(allowed("api.example.com", 443) && allowed("API.example.com", 80));
        assert!(!allowed("example.com", 443) && !allowed("evil-api.example.com", 443));
        assert!(allowed("a.cdn.test", 1) && allowed("a.b.cdn.test", 1) && !allowed("cdn.test", 1) && !allowed("xcdn.test", 1));
        assert!(allowed("127.0.0.1", 8080) && !allowed("127.0.0.1", 8081));
        assert!(allowed("::1", 9000) && !allowed("::1", 80));
        assert!(allowed("mixed.case", 1) && allowed("api.example.com.", 1));
        let dotted = EgressPolicy::allow_list(&["example.org.:80"]).unwrap();
        assert!(dotted.allows(&request("example.org", 80)));
        assert!(!EgressPolicy::allow_list::<&str>(&[]).unwrap().allows(&request("a", 1)));
        for bad in ["a\0b", "a\u{7f}b", "tab\there"] {
            assert_eq!(EgressPolicy::allow_list(&[bad]).unwrap_err().status(), Status::InvalidArgument, "{bad:?}");
        }
        for bad in ["", ":80", "a:port", "a:70000", "*", "a.*.b", "[::1", "[::1]x", "a b", "user@host", "http://a", "::1", "fe80::1:80"] {
            let e = EgressPolicy::allow_list(&[bad]).unwrap_err();
            assert_eq!(e.status(), Status::InvalidArgument, "{bad}");
            assert!(e.message().contains(&format!("\"{bad}\"")), "{}", e.message());
        }
    }

    #[test]
    fn socket_targets_and_special_addresses() {
        let policy = EgressPolicy::allow_list(&["db.example.com:5432", "127.0.0.1:9000", "93.184.216.34"]).unwrap();
        let target = |host: Option<&'static str>, addr: &str| SocketTarget {
            plugin: "p",
            protocol: SocketProtocol::Tcp,
            host,
            addr: addr.parse().unwrap(),
        };
        assert!(policy.allows_socket(&target(None, "127.0.0.1:9000")).is_ok());
        assert!(policy.allows_socket(&target(None, "[::ffff:127.0.0.1]:9000")).is_ok(), "v4-mapped is the v4 address");
        assert!(policy.allows_socket(&target(None, "127.0.0.1:9001")).is_err());
        assert!(policy.allows_socket(&target(None, "93.184.216.34:1")).is_ok());
        assert!(policy.allows_socket(&target(Some("db.example.com"), "93.184.216.35:5432")).is_ok());
        // A trusted name that leads to a special address the policy does not name.
        let e = policy.allows_socket(&target(Some("db.example.com"), "10.0.0.7:5432")).unwrap_err();
        assert!(e.contains("special address"), "{e}");
        assert!(EgressPolicy::from_fn("http only", |_| true).allows_socket(&target(None, "93.184.216.34:1")).is_err());
        for special in ["127.0.0.2", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "224.0.0.1", "0.0.0.0",
            "255.255.255.255", "::1", "::", "fe80::1", "fd00::1", "ff02::1", "::ffff:10.0.0.1"] {
            assert!(is_special(special.parse().unwrap()), "{special}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "100.128.0.1"] {
            assert!(!is_special(public.parse().unwrap()), "{public}");
        }
        // Lookups: names some pattern names; special answers only when named.
        let lookup = |name| DnsLookup { plugin: "p", name };
        assert!(policy.allows_dns(&lookup("db.example.com")).is_ok() && policy.allows_dns(&lookup("evil.test")).is_err());
        assert!(policy.allows_answer("p", SocketProtocol::Tcp, "8.8.8.8".parse().unwrap()));
        assert!(policy.allows_answer("p", SocketProtocol::Tcp, "127.0.0.1".parse().unwrap()), "named with a port: any port");
        assert!(!policy.allows_answer("p", SocketProtocol::Tcp, "10.0.0.1".parse().unwrap()));
        assert!(!policy.allows_answer("p", SocketProtocol::Tcp, "::1".parse().unwrap()));
    }

    #[test]
    fn header_edits_refuse_what_would_change_the_request_decided_on() {
        let mut edits = HeaderEdits::default();
        edits.set("Authorization", b"Bearer t\x80\tx").unwrap();
        edits.remove("x-guest").unwrap();
        assert_eq!(edits.iter().collect::<Vec<_>>(), vec![("authorization", Some(&b"Bearer t\x80\tx"[..])), ("x-guest", None)]);
        for name in ["", "a b", "a:b", "\u{e9}", "Host", "content-length", "Transfer-Encoding", "connection"] {
            let e = edits.set(name, b"v").unwrap_err();
            assert_eq!(e.status(), Status::InvalidArgument, "{name:?}");
        }
        for value in [&b"a\r\nx: y"[..], b"\0", b"\x7f"] {
            let e = edits.set("x-ok", value).unwrap_err();
            assert!(e.message().contains("\"x-ok\"") && e.message().contains("control byte"), "{}", e.message());
        }
        let mut many = HeaderEdits::default();
        for _ in 0..MAX_HEADER_EDITS {
            many.set("x", b"1").unwrap();
        }
        assert_eq!(many.set("x", b"1").unwrap_err().status(), Status::InvalidArgument);
    }

    #[test]
    fn denial_log_keeps_the_most_recent() {
        let log = DenialLog::default();
        for port in 0..(DenialLog::CAPACITY as u16 + 3) {
            log.record(&request("h", port), "denied by the egress policy");
        }
        let entries = log.entries();
        assert_eq!(entries.len(), DenialLog::CAPACITY);
        assert_eq!(entries[0].url, "http://h/");
        assert_eq!(entries[0].method, "GET");
    }
}
