//! `fidius_host_egress_policy_t`: which outbound HTTP requests sandboxed
//! plugins may send — a C callback or a built-in allow-list.

use crate::error::Status;
use super::error::fidius_host_error_t;
use super::{arg_handle_mut, arg_out, arg_out_cleared, arg_str, entry, new_handle, take_handle, Handle, Tagged};
use crate::egress::{is_special, DnsLookup, EgressPolicy, HeaderEdits, HttpRequest, HttpResponse, ResponseDirective, SocketProtocol, SocketTarget};
use std::sync::Arc;
use crate::error::Error;
use std::ffi::{c_char, c_void, CString};

/// An egress policy. Made by `fidius_host_egress_policy_new_callback` or
/// `fidius_host_egress_policy_new_allow_list`, owned by the caller, freed with
/// `fidius_host_egress_policy_free`. Builders and load options keep their own
/// reference, so the policy may be freed right after it is set.
pub struct fidius_host_egress_policy_t {
    _private: [u8; 0],
}

pub(crate) struct EgressPolicyData {
    pub(crate) policy: EgressPolicy,
}

impl Handle for fidius_host_egress_policy_t {
    type Inner = EgressPolicyData;
    const MAGIC: u64 = 0x4644_4547_5245_5331;
    const NAME: &'static str = "fidius_host_egress_policy_t";
}

/// What an egress callback answers. Any value other than
/// `FIDIUS_HOST_EGRESS_DECISION_ALLOW` denies.
#[repr(i32)]
pub enum fidius_host_egress_decision {
    /// The request is not sent; the guest gets an HTTP-request-denied error.
    Deny = 0,
    /// The request is sent.
    Allow = 1,
}

/// One header of a request: NUL-terminated name (lowercase) and value (the
/// bytes as sent, not necessarily UTF-8).
#[repr(C)]
pub struct fidius_host_http_header_t {
    /// Lowercase header name.
    pub name: *const c_char,
    /// Header value.
    pub value: *const c_char,
}

/// An outbound request, as an egress callback sees it. Every pointer is
/// borrowed for the duration of the callback only.
#[repr(C)]
pub struct fidius_host_http_request_t {
    /// The name of the plugin sending the request.
    pub plugin: *const c_char,
    /// `GET`, `POST`, ...
    pub method: *const c_char,
    /// `http` or `https`.
    pub scheme: *const c_char,
    /// `host`, `host:port` or `[ipv6]:port`, as the guest wrote it.
    pub authority: *const c_char,
    /// The host alone: lowercase, IPv6 without brackets.
    pub host: *const c_char,
    /// The port, explicit or the scheme's default (80, 443).
    pub port: u16,
    /// Path and query, `/` at least.
    pub path_with_query: *const c_char,
    /// The request's headers (`header_count` of them).
    pub headers: *const fidius_host_http_header_t,
    /// Number of headers.
    pub header_count: usize,
    /// Where the HTTP callback sets headers on the request it allows, with
    /// `fidius_host_header_edits_set`; valid until the callback returns.
    /// NULL when the request is shown to a response callback.
    pub edits: *mut fidius_host_header_edits_t,
}

/// The headers an HTTP callback sets on a request it allows (a credential,
/// a trace id), with `fidius_host_header_edits_set`. Borrowed for the
/// duration of the callback only.
pub struct fidius_host_header_edits_t {
    _private: [u8; 0],
}

impl Handle for fidius_host_header_edits_t {
    type Inner = HeaderEdits;
    const MAGIC: u64 = 0x4644_4845_4449_5431;
    const NAME: &'static str = "fidius_host_header_edits_t";
}

/// The head of a response, as a response callback sees it. Every pointer
/// is borrowed for the duration of the callback only.
#[repr(C)]
pub struct fidius_host_http_response_t {
    /// The status code.
    pub status: u16,
    /// The response's headers (`header_count` of them; names lowercase).
    pub headers: *const fidius_host_http_header_t,
    /// Number of headers.
    pub header_count: usize,
    /// Whether answering `FIDIUS_HOST_RESPONSE_DIRECTIVE_RETRY_ONCE` sends
    /// the request again: false for the response to a retry, and when the
    /// request's body was not kept whole (over 64 KiB, trailers, or still
    /// being written when the response came).
    pub retry_available: bool,
}

/// What a response callback answers. Any value other than
/// `FIDIUS_HOST_RESPONSE_DIRECTIVE_RETRY_ONCE` forwards.
#[repr(i32)]
pub enum fidius_host_response_directive {
    /// The guest gets the response.
    Forward = 0,
    /// The response is dropped; the request, as the guest made it, goes to
    /// the HTTP callback again (which may set a fresh credential), and if
    /// allowed is sent once more with the same body. The guest gets the
    /// second response, whatever it is; if the HTTP callback denies the
    /// retry, the guest gets an HTTP-request-denied error (logged as a
    /// denial). Ignored when `retry_available` is false.
    RetryOnce = 1,
}

/// A response callback: sees the head (status, headers; never the body)
/// of each response to a request the HTTP callback allowed, before the
/// guest does, with the request as it was sent (with the headers the
/// callback set). Returns a `fidius_host_response_directive`. Runs on one
/// of the library's I/O threads while the call that sent the request waits
/// for its response; a retry's HTTP callback runs there too. It may run on
/// several threads at once, must be thread-safe, must not call into the
/// plugin, and must not unwind through the library. The call's deadline
/// covers both sends, not the callbacks themselves.
pub type fidius_host_http_response_callback_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        request: *const fidius_host_http_request_t,
        response: *const fidius_host_http_response_t,
    ) -> i32,
>;

/// An egress callback: returns `FIDIUS_HOST_EGRESS_DECISION_ALLOW` to send `request`
/// (with the headers it set through `request->edits`), anything else to
/// deny it. Runs on the thread that called the plugin, during that call
/// (when a response callback asks for a retry: on that callback's thread),
/// and may run on several threads at once (one per plugin being called): it
/// must be thread-safe, must not call back into the same plugin, and must
/// not unwind (C++ exceptions, longjmp) through the library.
pub type fidius_host_egress_callback_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, request: *const fidius_host_http_request_t) -> i32>;

/// Releases a callback's userdata when the last user of the policy is gone.
pub type fidius_host_userdata_free_fn = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

/// The transport of a socket target.
#[repr(u32)]
#[derive(Clone, Copy)]
pub enum fidius_host_socket_protocol {
    /// An outbound TCP connection.
    Tcp = 1,
    /// An outbound UDP datagram.
    Udp = 2,
}

/// A socket a guest would open, as a socket callback sees it. Every pointer
/// is borrowed for the duration of the callback only.
#[repr(C)]
pub struct fidius_host_socket_target_t {
    /// The name of the plugin opening it.
    pub plugin: *const c_char,
    /// TCP or UDP.
    pub protocol: fidius_host_socket_protocol,
    /// The host name the guest dialed, when a lookup of it (which the DNS
    /// callback allowed) gave this address; NULL when the guest dialed an
    /// address.
    pub host: *const c_char,
    /// The address: `127.0.0.1`, `::1` (an IPv4-mapped IPv6 address as its
    /// IPv4 form).
    pub address: *const c_char,
    /// The port.
    pub port: u16,
    /// Whether the address is special (loopback, private, link-local,
    /// shared, multicast, unspecified, broadcast): allow it only if you mean
    /// that very address. For a special address reached by name the
    /// callback is asked twice: with the name, then with `host` NULL (is
    /// this very address allowed?); both must allow. Port 0 asks about a
    /// lookup's answer (may this address reach the guest at all?).
    pub special: bool,
}

/// A socket callback: returns `FIDIUS_HOST_EGRESS_DECISION_ALLOW` to let a
/// guest connect to (TCP) or send to (UDP) `target`, anything else to deny
/// it (the guest's operation fails with an access error). Runs like an
/// egress callback: on the thread that called the plugin, during the call,
/// possibly on several threads at once.
pub type fidius_host_socket_callback_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, target: *const fidius_host_socket_target_t) -> i32>;

/// A DNS callback: returns `FIDIUS_HOST_EGRESS_DECISION_ALLOW` to let the
/// guest of plugin `plugin` look up `name` (lowercase, no trailing dot),
/// anything else to refuse (the guest's lookup fails). Both strings are
/// borrowed for the call. Runs like a socket callback.
pub type fidius_host_dns_callback_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, plugin: *const c_char, name: *const c_char) -> i32>;

/// The callbacks of a policy made by `fidius_host_egress_policy_new_callbacks`.
#[repr(C)]
pub struct fidius_host_egress_callbacks_t {
    /// Decides each HTTP request; NULL: no request goes out.
    pub http: fidius_host_egress_callback_fn,
    /// Decides each socket target; NULL: no socket opens.
    pub socket: fidius_host_socket_callback_fn,
    /// Decides each name lookup of a guest that may open sockets; NULL: no
    /// name is looked up (guests dial addresses).
    pub dns: fidius_host_dns_callback_fn,
    /// Sees the head of each response to an allowed HTTP request and may
    /// have it sent once more; NULL: responses go to the guest unobserved
    /// (and request bodies are not kept for a retry).
    pub response: fidius_host_http_response_callback_fn,
}

/// The C side of a callback policy: called through, and released once.
struct Callback {
    http: Option<unsafe extern "C" fn(*mut c_void, *const fidius_host_http_request_t) -> i32>,
    socket: Option<unsafe extern "C" fn(*mut c_void, *const fidius_host_socket_target_t) -> i32>,
    dns: Option<unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char) -> i32>,
    response: fidius_host_http_response_callback_fn,
    userdata: *mut c_void,
    free_userdata: fidius_host_userdata_free_fn,
}

// SAFETY: the callback's contract makes it (and its userdata) usable from
// any thread at once.
unsafe impl Send for Callback {}
unsafe impl Sync for Callback {}

impl Drop for Callback {
    fn drop(&mut self) {
        if let Some(free) = self.free_userdata {
            // SAFETY: the caller gave this function for this userdata; it runs once.
            unsafe { free(self.userdata) };
        }
    }
}

impl Callback {
    /// Asks the DNS callback (none: denied).
    fn decide_dns(&self, lookup: &DnsLookup<'_>) -> bool {
        let Some(function) = self.dns else { return false };
        let (Ok(plugin), Ok(name)) = (CString::new(lookup.plugin), CString::new(lookup.name)) else { return false };
        // SAFETY: both strings live until the call returns.
        let answer = unsafe { function(self.userdata, plugin.as_ptr(), name.as_ptr()) };
        answer == fidius_host_egress_decision::Allow as i32
    }

    /// Asks the socket callback (none: denied).
    fn decide_socket(&self, target: &SocketTarget<'_>) -> bool {
        let Some(function) = self.socket else { return false };
        let text = |s: &str| CString::new(s).ok();
        let (Some(plugin), Some(address)) = (text(target.plugin), text(&target.addr.ip().to_canonical().to_string())) else {
            return false;
        };
        let host = match target.host.map(text) {
            Some(None) => return false,
            Some(Some(host)) => Some(host),
            None => None,
        };
        let view = fidius_host_socket_target_t {
            plugin: plugin.as_ptr(),
            protocol: match target.protocol {
                SocketProtocol::Tcp => fidius_host_socket_protocol::Tcp,
                SocketProtocol::Udp => fidius_host_socket_protocol::Udp,
            },
            host: host.as_ref().map_or(std::ptr::null(), |h| h.as_ptr()),
            address: address.as_ptr(),
            port: target.addr.port(),
            special: is_special(target.addr.ip()),
        };
        // SAFETY: every pointer in `view` lives until the call returns.
        let answer = unsafe { function(self.userdata, &view) };
        answer == fidius_host_egress_decision::Allow as i32
    }

    /// Asks the HTTP callback, which may set headers in `edits`; a request
    /// that cannot be shown to C (a NUL byte) is denied.
    fn decide(&self, request: &HttpRequest<'_>, edits: &mut HeaderEdits) -> bool {
        let Some(function) = self.http else { return false };
        let mut tagged = Tagged::new::<fidius_host_header_edits_t>(std::mem::take(edits));
        let handle = (&mut tagged as *mut Tagged<HeaderEdits>).cast::<fidius_host_header_edits_t>();
        let answer = with_request_view(request, handle, |view| {
            // SAFETY: every pointer in `view` lives until the call returns.
            unsafe { function(self.userdata, view) }
        });
        // A pointer kept past the callback is then MISUSE (best effort).
        tagged.magic = 0;
        *edits = std::mem::take(&mut tagged.value);
        answer == Some(fidius_host_egress_decision::Allow as i32)
    }

    /// Asks the response callback (none: forward).
    fn observe(&self, request: &HttpRequest<'_>, response: &HttpResponse<'_>) -> ResponseDirective {
        let Some(function) = self.response else { return ResponseDirective::Forward };
        let Some(strings) = c_headers(response.headers) else { return ResponseDirective::Forward };
        let headers = header_views(&strings);
        let head = fidius_host_http_response_t {
            status: response.status,
            headers: if headers.is_empty() { std::ptr::null() } else { headers.as_ptr() },
            header_count: headers.len(),
            retry_available: response.retry_available,
        };
        let answer = with_request_view(request, std::ptr::null_mut(), |view| {
            // SAFETY: every pointer in `view` and `head` lives until the call returns.
            unsafe { function(self.userdata, view, &head) }
        });
        match answer {
            Some(a) if a == fidius_host_response_directive::RetryOnce as i32 => ResponseDirective::RetryOnce,
            _ => ResponseDirective::Forward,
        }
    }

    /// The policy these callbacks make.
    fn into_policy(self, description: &str) -> EgressPolicy {
        let observes = self.response.is_some();
        let callback = Arc::new(self);
        let (sockets, dns, responses) = (callback.clone(), callback.clone(), callback.clone());
        let policy = EgressPolicy::decorating(description, move |request, edits| callback.decide(request, edits))
            .with_sockets(move |target| sockets.decide_socket(target))
            .with_dns(move |lookup| dns.decide_dns(lookup));
        match observes {
            true => policy.with_responses(move |request, response| responses.observe(request, response)),
            false => policy,
        }
    }
}

/// Headers as C strings; `None` when one holds a NUL byte.
fn c_headers(headers: &[(&str, &[u8])]) -> Option<Vec<(CString, CString)>> {
    headers.iter().map(|(name, value)| Some((CString::new(*name).ok()?, CString::new(*value).ok()?))).collect()
}

/// The C views of `strings`, borrowing them.
fn header_views(strings: &[(CString, CString)]) -> Vec<fidius_host_http_header_t> {
    strings.iter().map(|(name, value)| fidius_host_http_header_t { name: name.as_ptr(), value: value.as_ptr() }).collect()
}

/// Runs `f` with `request` as C sees it; `None` when it cannot be shown
/// to C (a NUL byte).
fn with_request_view<T>(
    request: &HttpRequest<'_>,
    edits: *mut fidius_host_header_edits_t,
    f: impl FnOnce(&fidius_host_http_request_t) -> T,
) -> Option<T> {
    let text = |s: &str| CString::new(s).ok();
    let (plugin, method, scheme, authority, host, path) = (
        text(request.plugin)?,
        text(request.method)?,
        text(request.scheme)?,
        text(request.authority)?,
        text(request.host)?,
        text(request.path_with_query)?,
    );
    let strings = c_headers(request.headers)?;
    let headers = header_views(&strings);
    let view = fidius_host_http_request_t {
        plugin: plugin.as_ptr(),
        method: method.as_ptr(),
        scheme: scheme.as_ptr(),
        authority: authority.as_ptr(),
        host: host.as_ptr(),
        port: request.port,
        path_with_query: path.as_ptr(),
        headers: if headers.is_empty() { std::ptr::null() } else { headers.as_ptr() },
        header_count: headers.len(),
        edits,
    };
    Some(f(&view))
}

/// A policy that asks `callback` about every request. `userdata` is passed
/// to it unchanged; `free_userdata` (may be NULL) is called with `userdata`
/// once, when the policy and every builder, host, load options and plugin
/// using it are gone — also when this function fails.
///
/// Errors: NULL_ARGUMENT (callback, out).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_egress_policy_new_callback(
    callback: fidius_host_egress_callback_fn,
    userdata: *mut c_void,
    free_userdata: fidius_host_userdata_free_fn,
    out: *mut *mut fidius_host_egress_policy_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        super::clear_out(out);
        let Some(function) = callback else {
            if let Some(free) = free_userdata {
                // SAFETY: as promised above, the userdata is released on failure too.
                unsafe { free(userdata) };
            }
            return Err(Error::null_argument("callback"));
        };
        let callback = Callback { http: Some(function), socket: None, dns: None, response: None, userdata, free_userdata };
        let out = arg_out(out, "out")?;
        *out = new_handle::<fidius_host_egress_policy_t>(EgressPolicyData { policy: callback.into_policy("a C callback") });
        Ok(())
    })
}

/// A policy that asks `callbacks->http` about every HTTP request (it may
/// set headers on the request it allows), `callbacks->socket` about every
/// socket target (a TCP connect, a UDP datagram) of guests that declare
/// `tcp` or `udp`, and `callbacks->dns` about every name such a guest looks
/// up; any may be NULL, which denies all of its kind. `callbacks->response`
/// (may be NULL) sees the head of every response to an allowed request
/// and may have the request sent once more (see
/// `fidius_host_http_response_callback_fn`). A lookup's answers in special ranges reach the guest
/// only when the socket callback allows that address (asked with port 0),
/// and each answer is pinned to the name: a later connect to it is asked
/// with that name as `host`. The struct is read during the call.
/// `userdata` is passed to both unchanged; `free_userdata` (may be NULL) is
/// called with it once, when the policy and every builder, host, load
/// options and plugin using it are gone — also when this function fails.
///
/// Errors: NULL_ARGUMENT (callbacks, out).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_egress_policy_new_callbacks(
    callbacks: *const fidius_host_egress_callbacks_t,
    userdata: *mut c_void,
    free_userdata: fidius_host_userdata_free_fn,
    out: *mut *mut fidius_host_egress_policy_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    // Owned first, so that every failure below releases the userdata.
    let mut callback = Callback { http: None, socket: None, dns: None, response: None, userdata, free_userdata };
    entry(err, || {
        super::clear_out(out);
        // SAFETY: NULL or a readable struct, as documented.
        let callbacks = unsafe { callbacks.as_ref() }.ok_or_else(|| Error::null_argument("callbacks"))?;
        let out = arg_out(out, "out")?;
        callback.http = callbacks.http;
        callback.socket = callbacks.socket;
        callback.dns = callbacks.dns;
        callback.response = callbacks.response;
        *out = new_handle::<fidius_host_egress_policy_t>(EgressPolicyData { policy: callback.into_policy("C callbacks") });
        Ok(())
    })
}

/// Sets header `name` (NUL-terminated; case-insensitive) of the request an
/// HTTP callback is deciding on to `value` (NUL-terminated bytes, not
/// necessarily UTF-8; may be NULL, which removes the header), replacing
/// every value the guest gave it. Applied in call order when the callback
/// allows the request (ignored when it denies). For a retry the callback
/// starts again from the guest's request. Call it only from inside the
/// callback, with its `request->edits`.
///
/// Errors: NULL_ARGUMENT (edits, name), MISUSE (not the edits of a running
/// HTTP callback), INVALID_UTF8 (name), INVALID_ARGUMENT (a name that is
/// not an HTTP token or is one the library frames or routes the request
/// with — `host`, `content-length`, `transfer-encoding`, `connection`,
/// `keep-alive`, `proxy-connection`, `upgrade`, `te`, `trailer`,
/// `http2-settings`; a value with a control character; more than 64 edits
/// for one request). An error leaves the edits made so far.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_header_edits_set(
    edits: *mut fidius_host_header_edits_t,
    name: *const c_char,
    value: *const c_char,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let edits = arg_handle_mut(edits, "edits")?;
        let name = arg_str(name, super::FIDIUS_HOST_NUL_TERMINATED, "name")?;
        if value.is_null() {
            return edits.remove(name);
        }
        // SAFETY: non-NULL and NUL-terminated, as documented.
        let value = unsafe { std::ffi::CStr::from_ptr(value) };
        edits.set(name, value.to_bytes())
    })
}

/// A policy that allows requests whose host and port match one of
/// `patterns` (an array of `pattern_count` strings, borrowed for the call;
/// it may be NULL when `pattern_count` is 0, which denies everything): `example.com` (any port),
/// `example.com:8080`, `*.example.com` (subdomains, not example.com itself),
/// `127.0.0.1:9000`, `[::1]:9000`. Names are compared case-insensitively,
/// and as names: a pattern does not follow DNS. For guests that open
/// sockets: a name is looked up only when a pattern names it; a socket
/// target (TCP connect, UDP datagram) matches by the name its lookup gave
/// it, or by its address and port; a special address (loopback, private,
/// …) is reached, and handed out by a lookup, only when a pattern names
/// that address.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, INVALID_ARGUMENT (names the bad
/// pattern and the accepted forms).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_egress_policy_new_allow_list(
    patterns: *const super::fidius_host_str_t,
    pattern_count: usize,
    out: *mut *mut fidius_host_egress_policy_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let out = arg_out_cleared(out, "out")?;
        let patterns = super::arg_str_list(patterns, pattern_count, "patterns")?;
        let policy = EgressPolicy::allow_list(&patterns)?;
        *out = new_handle::<fidius_host_egress_policy_t>(EgressPolicyData { policy });
        Ok(())
    })
}

/// Frees a policy handle. Builders, load options and plugins that use the
/// policy keep it alive. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_egress_policy_free(policy: *mut fidius_host_egress_policy_t) {
    super::entry_value((), || drop(take_handle(policy)))
}

/// The policy behind an optional handle argument (NULL: none).
pub(crate) fn arg_policy(policy: *const fidius_host_egress_policy_t) -> crate::Result<Option<EgressPolicy>> {
    if policy.is_null() {
        return Ok(None);
    }
    Ok(Some(super::arg_handle(policy, "policy")?.policy.clone()))
}
