//! Outbound HTTP of WASM guests: the fetch component against a real HTTP
//! server on 127.0.0.1, through allow-lists and policy functions.
#![cfg(feature = "wasm")]

mod common;

use common::*;
use fidius_host::egress::{EgressPolicy, ResponseDirective, REPLAY_LIMIT};
use fidius_host::interface::file;
use fidius_host::{Host, HostBuilder, Interface, LoadOptions, Plugin, Status};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as the test server saw it: the request line and headers
/// (lowercase), and the body (read by its `content-length`).
#[derive(Clone)]
struct Seen {
    head: String,
    body: Vec<u8>,
}

impl Seen {
    /// The value of header `name` (lowercase), if sent.
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(':').map(str::trim))
    }
}

/// What the server answers a request with: a status and a body, or
/// `None` to never respond.
type Responder = dyn Fn(&Seen) -> Option<(u16, String)> + Send;

/// A one-thread HTTP/1.1 server on 127.0.0.1 that remembers the requests
/// it saw.
struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    /// Answers every request with "200 hello from <path>".
    fn start() -> Server {
        Server::start_with(true)
    }

    /// `answer = false`: accept connections and never respond.
    fn start_with(answer: bool) -> Server {
        Server::answering(move |seen| answer.then(|| (200, format!("hello from {}", seen.head.split_whitespace().nth(1).unwrap_or("")))))
    }

    fn answering(respond: impl Fn(&Seen) -> Option<(u16, String)> + Send + 'static) -> Server {
        let respond: Box<Responder> = Box::new(respond);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            let mut idle = Vec::new();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line.to_ascii_lowercase());
                }
                let mut request = Seen { head, body: Vec::new() };
                let length = request.header("content-length").and_then(|l| l.parse::<usize>().ok()).unwrap_or(0);
                request.body = vec![0; length];
                let _ = reader.read_exact(&mut request.body);
                log.lock().unwrap().push(request.clone());
                let Some((status, body)) = respond(&request) else {
                    idle.push(stream);
                    continue;
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\nX-Served: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len(),
                    log.lock().unwrap().len()
                );
            }
        });
        Server { port, seen }
    }

    /// The request lines and headers seen, in order.
    fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().iter().map(|s| s.head.clone()).collect()
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn fetcher() -> Arc<Interface> {
    Arc::new(file::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-c/interfaces/fetcher.toml")).unwrap())
}

fn package() -> PathBuf {
    fixture("wasm/fetch")
}

fn load(host: &Host, dir: &Path, egress: Option<EgressPolicy>) -> fidius_host::Result<Plugin> {
    let options = LoadOptions::with_interface(fetcher()).egress_policy(egress).clone();
    host.load_path_with(dir, Some("FetchGuest"), &options)
}

fn fetch(plugin: &Plugin, method: &str, url: &str) -> fidius_host::Result<String> {
    let answer = plugin.call_json("fetch", &serde_json::json!([method, url]).to_string())?;
    Ok(serde_json::from_str::<String>(&answer).unwrap())
}

fn allow(patterns: &[String]) -> EgressPolicy {
    EgressPolicy::allow_list(patterns).unwrap()
}

#[test]
fn an_allowed_request_reaches_the_server() {
    let server = Server::start();
    let plugin = load(&host_for(&fixture("wasm")), &package(), Some(allow(&[format!("127.0.0.1:{}", server.port)]))).unwrap();
    let answer = fetch(&plugin, "GET", &format!("http://127.0.0.1:{}/hello?x=1", server.port)).unwrap();
    assert_eq!(answer, "200 hello from /hello?x=1");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].starts_with("get /hello?x=1 http/1.1"), "{}", requests[0]);
    assert!(requests[0].contains("x-fidius-fixture: fetch"), "{}", requests[0]);
    assert!(plugin.denied_requests().is_empty());
}

#[test]
fn a_denied_request_is_an_http_error_for_the_guest_and_logged_for_the_host() {
    let server = Server::start();
    let other_port = server.port.wrapping_add(1);
    let plugin = load(&host_for(&fixture("wasm")), &package(), Some(allow(&[format!("127.0.0.1:{other_port}")]))).unwrap();
    let url = format!("http://127.0.0.1:{}/secret", server.port);
    let e = fetch(&plugin, "GET", &url).unwrap_err();
    assert_eq!(e.status(), Status::PluginError, "{}", e.message());
    let error = e.plugin_error().unwrap();
    assert_eq!(error.code(), "HTTP");
    assert!(error.message().contains("HttpRequestDenied"), "{}", error.message());
    assert!(server.requests().is_empty(), "nothing reached the server");
    let denied = plugin.denied_requests();
    assert_eq!(denied.len(), 1);
    assert_eq!((denied[0].method.as_str(), denied[0].url.as_str()), ("GET", url.as_str()));
    // User info in the authority is refused whatever the policy says: the
    // connector would dial another string than the host it checked.
    let sneaky = format!("http://user@127.0.0.1:{}/x", server.port);
    let both = load(&host_for(&fixture("wasm")), &package(), Some(allow(&["127.0.0.1".to_string()]))).unwrap();
    assert_eq!(fetch(&both, "GET", &sneaky).unwrap_err().status(), Status::PluginError);
    assert!(server.requests().is_empty());
    // Not a trap: the same instance keeps serving (and the log keeps growing).
    fetch(&plugin, "DELETE", "http://example.invalid/x").unwrap_err();
    assert_eq!(plugin.denied_requests()[1].method, "DELETE");
}

#[test]
fn a_policy_function_sees_the_whole_request() {
    let server = Server::start();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let policy = EgressPolicy::from_fn("test", move |request| {
        let headers: Vec<String> =
            request.headers.iter().map(|(n, v)| format!("{n}={}", String::from_utf8_lossy(v))).collect();
        log.lock().unwrap().push(format!(
            "{} {} {} {} {}:{} {} [{}]",
            request.plugin,
            request.method,
            request.scheme,
            request.authority,
            request.host,
            request.port,
            request.path_with_query,
            headers.join(",")
        ));
        request.method == "GET"
    });
    let plugin = load(&host_for(&fixture("wasm")), &package(), Some(policy)).unwrap();
    let base = format!("http://127.0.0.1:{}", server.port);
    assert_eq!(fetch(&plugin, "GET", &format!("{base}/a")).unwrap(), "200 hello from /a");
    assert_eq!(fetch(&plugin, "POST", &format!("{base}/b")).unwrap_err().status(), Status::PluginError);
    let seen = seen.lock().unwrap();
    let authority = format!("127.0.0.1:{}", server.port);
    assert_eq!(seen.len(), 2);
    assert!(seen[0].starts_with(&format!("FetchGuest GET http {authority} {authority} /a [")), "{}", seen[0]);
    assert!(seen[0].contains("x-fidius-fixture=fetch"), "{}", seen[0]);
    assert!(seen[1].starts_with("FetchGuest POST"), "{}", seen[1]);
    assert_eq!(server.requests().len(), 1, "the POST never left");
    assert_eq!(plugin.denied_requests().len(), 1);
}

#[test]
fn the_load_policy_overrides_the_host_policy() {
    let server = Server::start();
    let url = format!("http://127.0.0.1:{}/p", server.port);
    let host = HostBuilder::new().egress_policy(Some(allow(&[]))).build().unwrap();
    let denied = load(&host, &package(), None).unwrap();
    assert_eq!(fetch(&denied, "GET", &url).unwrap_err().status(), Status::PluginError);
    let allowed = load(&host, &package(), Some(allow(&["127.0.0.1".to_string()]))).unwrap();
    assert_eq!(fetch(&allowed, "GET", &url).unwrap(), "200 hello from /p");
    assert_eq!((denied.denied_requests().len(), allowed.denied_requests().len()), (1, 0));
}

#[test]
fn http_fails_closed_at_load() {
    let host = host_for(&fixture("wasm"));
    // The capability without any policy.
    let e = load(&host, &package(), None).unwrap_err();
    assert_eq!(e.status(), Status::NoEgressPolicy, "{}", e.message());
    assert!(e.message().contains("wasi:http/"), "{}", e.message());
    // A component that imports wasi:http from a package without the capability.
    let dir = temp_dir("egress-nocap").join("fetch");
    std::fs::create_dir_all(&dir).unwrap();
    copy_into(&dir, &package().join("fetch_component.wasm"));
    let manifest = std::fs::read_to_string(package().join("package.toml")).unwrap();
    std::fs::write(dir.join("package.toml"), manifest.replace("capabilities = [\"http\"]", "")).unwrap();
    let e = load(&host, &dir, Some(allow(&["127.0.0.1".to_string()]))).unwrap_err();
    assert_eq!(e.status(), Status::CapabilityMissing, "{}", e.message());
    assert!(e.message().contains("\"http\" capability"), "{}", e.message());
    // A host that denies the capability.
    let strict = HostBuilder::new().deny_capability("http").unwrap().build().unwrap();
    let e = load(&strict, &package(), Some(allow(&["127.0.0.1".to_string()]))).unwrap_err();
    assert_eq!(e.status(), Status::CapabilityDenied, "{}", e.message());
}

#[test]
fn a_guest_blocked_writing_a_request_body_is_stopped_at_its_deadline() {
    let host = HostBuilder::new().wasm_deadline(Some(Duration::from_millis(300))).build().unwrap();
    let plugin = load(&host, &package(), Some(allow(&["127.0.0.1".to_string()]))).unwrap();
    // A little fits in the body's buffer.
    assert_eq!(plugin.call_json("stuff_body", "[0]").unwrap(), "0");
    // A gigabyte does not: nobody reads the body, so the guest's blocking
    // write waits in the host, until the deadline.
    let started = Instant::now();
    let e = plugin.call_json("stuff_body", "[1024]").unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert_eq!(e.status(), Status::Timeout, "{}", e.message());
    assert_eq!(plugin.call_json("stuff_body", "[0]").unwrap(), "0");
}

#[test]
fn a_silent_server_cannot_hold_a_call_past_its_deadline() {
    let server = Server::start_with(false);
    let host = HostBuilder::new().wasm_deadline(Some(Duration::from_millis(300))).build().unwrap();
    let plugin = load(&host, &package(), Some(allow(&["127.0.0.1".to_string()]))).unwrap();
    let started = Instant::now();
    // The guest waits for the response in the host; the wait ends at the
    // call's deadline, and so does the call.
    let e = fetch(&plugin, "GET", &format!("http://127.0.0.1:{}/slow", server.port)).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert_eq!(e.status(), Status::Timeout, "{}", e.message());
    assert!(e.message().contains("deadline"), "{}", e.message());
    // A TLS handshake with a server that never answers is bounded too.
    let started = Instant::now();
    let e = fetch(&plugin, "GET", &format!("https://127.0.0.1:{}/tls", server.port)).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert_eq!(e.status(), Status::Timeout, "{}", e.message());
    // The plugin serves the next call.
    let e = fetch(&plugin, "GET", "http://denied.example/").unwrap_err();
    assert_eq!(e.status(), Status::PluginError, "{}", e.message());
}

fn fetch_with_body(plugin: &Plugin, method: &str, url: &str, body: &str) -> fidius_host::Result<String> {
    let answer = plugin.call_json("fetch_with_body", &serde_json::json!([method, url, body]).to_string())?;
    Ok(serde_json::from_str::<String>(&answer).unwrap())
}

/// A server that wants `authorization: bearer fresh` (401 without it).
fn wants_fresh_credential() -> Server {
    Server::answering(|seen| {
        Some(match seen.header("authorization") {
            Some("bearer fresh") => (200, format!("welcome, {} bytes", seen.body.len())),
            _ => (401, "unauthorized".to_string()),
        })
    })
}

/// One observation of a response hook: the status, whether a retry was
/// available, and the credential the request was sent with.
type Observed = Arc<Mutex<Vec<(u16, bool, Option<String>)>>>;

/// A policy that sends its `credentials` in turn (the last one ever
/// after) as `authorization: Bearer <credential>`, removes the guest's
/// `x-fidius-fixture` header, records what its response hook sees in
/// `observed` and answers it with `directive`.
fn credential_policy(
    credentials: &'static [&'static str],
    directive: impl Fn(u16) -> ResponseDirective + Send + Sync + 'static,
    observed: &Observed,
) -> EgressPolicy {
    let issued = Arc::new(Mutex::new(0usize));
    let log = observed.clone();
    EgressPolicy::decorating("credentials", move |_request, edits| {
        let mut issued = issued.lock().unwrap();
        let credential = credentials[(*issued).min(credentials.len() - 1)];
        *issued += 1;
        edits.set("Authorization", format!("Bearer {credential}").as_bytes()).unwrap();
        edits.remove("x-fidius-fixture").unwrap();
        true
    })
    .with_responses(move |request, response| {
        let credential = request.headers.iter().find(|(n, _)| *n == "authorization").map(|(_, v)| String::from_utf8_lossy(v).into_owned());
        assert!(response.headers.iter().any(|(n, _)| *n == "x-served"), "the response's headers are shown");
        log.lock().unwrap().push((response.status, response.retry_available, credential));
        directive(response.status)
    })
}

fn retry_on_401(status: u16) -> ResponseDirective {
    if status == 401 { ResponseDirective::RetryOnce } else { ResponseDirective::Forward }
}

#[test]
fn a_policy_sets_headers_on_the_requests_it_allows() {
    let server = Server::start();
    let observed = Observed::default();
    let policy = credential_policy(&["t1"], |_| ResponseDirective::Forward, &observed);
    let plugin = load(&host_for(&fixture("wasm")), &package(), Some(policy)).unwrap();
    let answer = fetch(&plugin, "GET", &format!("http://127.0.0.1:{}/h", server.port)).unwrap();
    assert_eq!(answer, "200 hello from /h");
    let seen = server.seen();
    assert_eq!(seen[0].header("authorization"), Some("bearer t1"), "{}", seen[0].head);
    assert_eq!(seen[0].header("x-fidius-fixture"), None, "removed by the policy: {}", seen[0].head);
    assert_eq!(*observed.lock().unwrap(), vec![(200, true, Some("Bearer t1".to_string()))], "the hook sees the request as sent");
    // A policy that sets a header it may not: the request is not sent.
    let refused = EgressPolicy::decorating("sets host", |_, edits| edits.set("host", b"elsewhere").is_ok());
    let plugin = load(&host_for(&fixture("wasm")), &package(), Some(refused)).unwrap();
    assert_eq!(fetch(&plugin, "GET", &format!("http://127.0.0.1:{}/x", server.port)).unwrap_err().status(), Status::PluginError);
    assert_eq!(server.seen().len(), 1);
}

#[test]
fn a_response_hook_retries_once_with_a_fresh_credential_and_the_same_body() {
    let server = wants_fresh_credential();
    let observed = Observed::default();
    let plugin = load(&host_for(&fixture("wasm")), &package(), Some(credential_policy(&["stale", "fresh"], retry_on_401, &observed))).unwrap();
    let url = format!("http://127.0.0.1:{}/upload", server.port);
    let body = "x".repeat(40_000);
    assert_eq!(fetch_with_body(&plugin, "POST", &url, &body).unwrap(), "200 welcome, 40000 bytes");
    let seen = server.seen();
    assert_eq!(seen.len(), 2, "sent twice");
    assert_eq!((seen[0].header("authorization"), seen[1].header("authorization")), (Some("bearer stale"), Some("bearer fresh")));
    assert!(seen.iter().all(|s| s.body == body.as_bytes()), "the same body both times");
    assert_eq!(
        *observed.lock().unwrap(),
        vec![(401, true, Some("Bearer stale".to_string())), (200, false, Some("Bearer fresh".to_string()))]
    );
    // A bodiless GET is retried too.
    assert_eq!(fetch(&plugin, "GET", &url).unwrap(), "200 welcome, 0 bytes");
    assert!(plugin.denied_requests().is_empty());
}

#[test]
fn a_retry_is_sent_at_most_once() {
    let server = wants_fresh_credential();
    let observed = Observed::default();
    let policy = credential_policy(&["stale"], |_| ResponseDirective::RetryOnce, &observed);
    let plugin = load(&host_for(&fixture("wasm")), &package(), Some(policy)).unwrap();
    let answer = fetch(&plugin, "GET", &format!("http://127.0.0.1:{}/r", server.port)).unwrap();
    assert_eq!(answer, "401 unauthorized", "the second response reaches the guest whatever it is");
    assert_eq!(server.seen().len(), 2);
    let observed = observed.lock().unwrap();
    assert_eq!(observed.iter().map(|o| (o.0, o.1)).collect::<Vec<_>>(), vec![(401, true), (401, false)]);
}

#[test]
fn a_body_too_large_to_keep_is_sent_once() {
    let server = wants_fresh_credential();
    let observed = Observed::default();
    let plugin = load(&host_for(&fixture("wasm")), &package(), Some(credential_policy(&["stale", "fresh"], retry_on_401, &observed))).unwrap();
    let body = "y".repeat(REPLAY_LIMIT + 1);
    let answer = fetch_with_body(&plugin, "PUT", &format!("http://127.0.0.1:{}/big", server.port), &body).unwrap();
    assert_eq!(answer, "401 unauthorized");
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body.len(), REPLAY_LIMIT + 1, "the body went out whole");
    assert_eq!(observed.lock().unwrap().iter().map(|o| (o.0, o.1)).collect::<Vec<_>>(), vec![(401, false)]);
}

#[test]
fn a_retry_the_policy_denies_is_a_denied_request() {
    let server = wants_fresh_credential();
    let asked = Arc::new(Mutex::new(0));
    let count = asked.clone();
    let policy = EgressPolicy::from_fn("once", move |_| {
        let mut asked = count.lock().unwrap();
        *asked += 1;
        *asked == 1
    })
    .with_responses(|_, _| ResponseDirective::RetryOnce);
    let plugin = load(&host_for(&fixture("wasm")), &package(), Some(policy)).unwrap();
    let url = format!("http://127.0.0.1:{}/d", server.port);
    let e = fetch(&plugin, "GET", &url).unwrap_err();
    assert!(e.plugin_error().unwrap().message().contains("HttpRequestDenied"), "{}", e.message());
    assert_eq!(server.seen().len(), 1);
    let denied = plugin.denied_requests();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].url, url);
    assert!(denied[0].reason.contains("retry"), "{}", denied[0].reason);
}
