//! Outbound HTTP of a guest (`wasi:http`), checked against the plugin's
//! egress policy before anything is sent. A denied request reaches the guest
//! as `error-code::HTTP-request-denied` (an HTTP error it can handle, not a
//! trap) and is recorded in the plugin's denial log. An allowed request is
//! sent with the headers the policy set; a policy that observes responses
//! sees each response's head first and may have the request sent once more.

use super::replay::TeeBody;
use crate::egress::{DenialLog, EgressPolicy, HeaderEdits, HttpRequest, HttpResponse, ResponseDirective};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

/// What one guest's outbound requests go through.
pub struct EgressHooks {
    /// The plugin's name, shown to the policy.
    pub plugin: Arc<str>,
    /// `None`: the guest has no `http` capability; every request is denied.
    pub policy: Option<EgressPolicy>,
    pub denials: Arc<DenialLog>,
    /// How long a request may take in the background. The guest's waits
    /// for it end at the call deadline (see `waits`); this is a little
    /// longer, so that the deadline, not a request timeout, ends a waiting
    /// call, and no request outlives its call by much.
    pub timeout: Option<Duration>,
}

/// How much longer than its call a request may run in the background.
pub const GRACE: Duration = Duration::from_secs(1);

type Exchange = wasmtime_wasi_http::Result<(http::Response<WasiBody>, Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>)>;
type ResponseFuture = Box<dyn Future<Output = Exchange> + Send>;

/// The policy's questions about one request, asked with the plugin's name
/// and recorded in its denial log.
#[derive(Clone)]
struct Gate {
    plugin: Arc<str>,
    policy: Option<EgressPolicy>,
    denials: Arc<DenialLog>,
}

impl Gate {
    /// The header edits to send `head` with, or `None` (recorded with
    /// `reason` when the policy denies it) when it may not go out.
    fn authorize(&self, head: &http::request::Parts, reason: &str) -> Option<HeaderEdits> {
        // With user info (`user@host`), the string the connector dials is
        // not the host the policy would see: never sent.
        let user_info = head.uri.authority().is_some_and(|a| a.as_str().contains('@'));
        let decision = view(&self.plugin, head, |request| {
            let denied = match &self.policy {
                _ if user_info => Err("user info in the authority is never sent"),
                None => Err("the package does not declare the \"http\" capability"),
                Some(policy) => policy.authorize(request).ok_or(reason),
            };
            if let Err(reason) = denied {
                self.denials.record(request, reason);
            }
            denied.ok()
        });
        decision.flatten()
    }

    /// What the policy wants done with `response` to `sent`.
    fn on_response(&self, sent: &http::request::Parts, response: &http::Response<WasiBody>, retry_available: bool) -> ResponseDirective {
        let Some(policy) = &self.policy else { return ResponseDirective::Forward };
        let headers: Vec<(&str, &[u8])> = response.headers().iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
        let response = HttpResponse { status: response.status().as_u16(), headers: &headers, retry_available };
        view(&self.plugin, sent, |request| policy.on_response(request, &response)).unwrap_or(ResponseDirective::Forward)
    }
}

/// Runs `f` on `head` as a policy sees it; `None` for a request without an
/// authority.
fn view<T>(plugin: &str, head: &http::request::Parts, f: impl FnOnce(&HttpRequest<'_>) -> T) -> Option<T> {
    let uri = &head.uri;
    let scheme = uri.scheme_str().unwrap_or("");
    let authority = uri.authority()?;
    let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let port = authority.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
    let headers: Vec<(&str, &[u8])> = head.headers.iter().map(|(name, value)| (name.as_str(), value.as_bytes())).collect();
    let request = HttpRequest {
        plugin,
        method: head.method.as_str(),
        scheme,
        authority: authority.as_str(),
        host: &host,
        port,
        path_with_query: uri.path_and_query().map_or("/", |p| p.as_str()),
        headers: &headers,
    };
    Some(f(&request))
}

/// `head` with the policy's header edits applied.
fn stamped(mut head: http::request::Parts, edits: &HeaderEdits) -> http::request::Parts {
    for (name, value) in edits.iter() {
        // Both were checked when the policy set them.
        let Ok(name) = http::HeaderName::from_bytes(name.as_bytes()) else { continue };
        head.headers.remove(&name);
        if let Some(Ok(value)) = value.map(http::HeaderValue::from_bytes) {
            head.headers.insert(name, value);
        }
    }
    head
}

/// Sends one request as wasi-http would.
fn send(head: http::request::Parts, body: WasiBody, options: Option<RequestOptions>) -> Pin<ResponseFuture> {
    let io_result = Box::new(async { Ok(()) });
    Box::into_pin(wasmtime_wasi_http::default_hooks().send_request(http::Request::from_parts(head, body), options, io_result))
}

/// Sends `original` stamped with `edits`, shows the response's head to the
/// policy, and honours at most one retry: the original request asked about
/// again (so the policy can set a fresh credential) and sent with the same
/// body. The guest gets the last response.
async fn send_observed(
    gate: Gate,
    original: http::request::Parts,
    edits: HeaderEdits,
    body: WasiBody,
    options: Option<RequestOptions>,
) -> Exchange {
    let content_length = original.headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
    let (body, kept) = TeeBody::wrap(body, content_length);
    let sent = stamped(original.clone(), &edits);
    let first = send(sent.clone(), body, options).await?;
    let replay = kept.replay();
    let directive = gate.on_response(&sent, &first.0, replay.is_some());
    let (ResponseDirective::RetryOnce, Some(body)) = (directive, replay) else { return Ok(first) };
    drop(first);
    let Some(edits) = gate.authorize(&original, "denied by the egress policy when asked again for a retry") else {
        return Err(wasmtime_wasi_http::Error::HttpRequestDenied);
    };
    let sent = stamped(original, &edits);
    let second = send(sent.clone(), body, options).await?;
    // Shown for the record; a second retry is not available.
    gate.on_response(&sent, &second.0, false);
    Ok(second)
}

impl EgressHooks {
    fn gate(&self) -> Gate {
        Gate { plugin: self.plugin.clone(), policy: self.policy.clone(), denials: self.denials.clone() }
    }

    /// The guest's timeouts, none longer than `timeout`.
    fn bounded(&self, options: Option<RequestOptions>) -> Option<RequestOptions> {
        let Some(limit) = self.timeout else { return options };
        let mut options = options.unwrap_or_default();
        for timeout in [&mut options.connect_timeout, &mut options.first_byte_timeout, &mut options.between_bytes_timeout] {
            *timeout = Some(timeout.map_or(limit, |t| t.min(limit)));
        }
        Some(options)
    }
}

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> ResponseFuture {
        let (head, body) = request.into_parts();
        let gate = self.gate();
        let Some(edits) = gate.authorize(&head, "denied by the egress policy") else {
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        };
        let options = self.bounded(options);
        let send: Pin<ResponseFuture> = if gate.policy.as_ref().is_some_and(EgressPolicy::observes_responses) {
            Box::pin(send_observed(gate, head, edits, body, options))
        } else {
            let request = http::Request::from_parts(stamped(head, &edits), body);
            Box::into_pin(wasmtime_wasi_http::default_hooks().send_request(request, options, fut))
        };
        let Some(limit) = self.timeout else { return Box::new(send) };
        // The per-step timeouts above do not cover a TLS handshake, and add
        // up (and a retry doubles them): the whole exchange up to the last
        // response head is bounded too.
        Box::new(async move {
            match tokio::time::timeout(limit, send).await {
                Ok(result) => result,
                Err(_) => Err(wasmtime_wasi_http::Error::ConnectionTimeout),
            }
        })
    }
}
