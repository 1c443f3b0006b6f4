//! Outbound HTTP of a guest (`wasi:http`), checked against the plugin's
//! egress policy before anything is sent. A denied request reaches the guest
//! as `error-code::HTTP-request-denied` (an HTTP error it can handle, not a
//! trap) and is recorded in the plugin's denial log.

use crate::egress::{DenialLog, EgressPolicy, HttpRequest};
use std::future::Future;
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

type ResponseFuture = Box<
    dyn Future<Output = wasmtime_wasi_http::Result<(http::Response<WasiBody>, Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>)>>
        + Send,
>;

impl EgressHooks {
    /// Asks the policy about `request`; records a denial.
    fn allows(&self, request: &http::Request<WasiBody>) -> bool {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("");
        let Some(authority) = uri.authority() else { return false };
        // With user info (`user@host`), the string the connector dials is
        // not the host the policy would see: never sent.
        let refused = authority.as_str().contains('@');
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let port = authority.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
        let headers: Vec<(&str, &[u8])> = request.headers().iter().map(|(name, value)| (name.as_str(), value.as_bytes())).collect();
        let request = HttpRequest {
            plugin: &self.plugin,
            method: request.method().as_str(),
            scheme,
            authority: authority.as_str(),
            host: &host,
            port,
            path_with_query: uri.path_and_query().map_or("/", |p| p.as_str()),
            headers: &headers,
        };
        let denied = match &self.policy {
            _ if refused => Some("user info in the authority is never sent"),
            None => Some("the package does not declare the \"http\" capability"),
            Some(policy) => (!policy.allows(&request)).then_some("denied by the egress policy"),
        };
        if let Some(reason) = denied {
            self.denials.record(&request, reason);
        }
        denied.is_none()
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
        if !self.allows(&request) {
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let options = self.bounded(options);
        let send = Box::into_pin(wasmtime_wasi_http::default_hooks().send_request(request, options, fut));
        let Some(limit) = self.timeout else { return Box::new(send) };
        // The per-step timeouts above do not cover a TLS handshake, and add
        // up: the whole exchange up to the response head is bounded too.
        Box::new(async move {
            match tokio::time::timeout(limit, send).await {
                Ok(result) => result,
                Err(_) => Err(wasmtime_wasi_http::Error::ConnectionTimeout),
            }
        })
    }
}
