//! Outbound HTTP policy: which requests a sandboxed plugin may send.
//!
//! A policy sees each request before anything goes on the wire and answers
//! allow or deny. Two kinds: a function (the host's own rules, e.g. a C
//! callback) and an allow-list of `host[:port]` patterns. Requests a policy
//! denies are recorded per plugin in a [`DenialLog`] the host can read.

use crate::error::{Error, Result, Status};
use std::collections::VecDeque;
use std::fmt;
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

type Decide = dyn Fn(&HttpRequest<'_>) -> bool + Send + Sync;

/// Decides which outbound requests go out. Cheap to clone (shared).
#[derive(Clone)]
pub struct EgressPolicy {
    decide: Arc<Decide>,
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
        EgressPolicy { decide: Arc::new(decide), description: description.into() }
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
        Ok(EgressPolicy::from_fn(&description, move |request| {
            patterns.iter().any(|p| p.matches(request.host, request.port))
        }))
    }

    /// Whether `request` may go out.
    pub fn allows(&self, request: &HttpRequest<'_>) -> bool {
        (self.decide)(request)
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
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
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

/// A request a policy denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeniedRequest {
    pub method: String,
    pub url: String,
}

/// The most recent denied requests of one plugin.
#[derive(Debug, Default)]
pub struct DenialLog {
    entries: Mutex<VecDeque<DeniedRequest>>,
}

impl DenialLog {
    /// How many denials are kept; older ones are dropped.
    pub const CAPACITY: usize = 256;

    pub fn record(&self, request: &HttpRequest<'_>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() == Self::CAPACITY {
            entries.pop_front();
        }
        entries.push_back(DeniedRequest { method: request.method.to_string(), url: request.url() });
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
    fn denial_log_keeps_the_most_recent() {
        let log = DenialLog::default();
        for port in 0..(DenialLog::CAPACITY as u16 + 3) {
            log.record(&request("h", port));
        }
        let entries = log.entries();
        assert_eq!(entries.len(), DenialLog::CAPACITY);
        assert_eq!(entries[0].url, "http://h/");
        assert_eq!(entries[0].method, "GET");
    }
}
