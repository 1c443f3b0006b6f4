//! Sockets of WASM guests (`tcp`, `udp`): the dialer component against a
//! TCP echo server and a UDP receiver on 127.0.0.1, through allow-lists and
//! policy functions. 127.0.0.1 is a special address: it is reachable only
//! when the policy allows it.
#![cfg(feature = "wasm")]

mod common;

use common::*;
use fidius_host::egress::{EgressPolicy, SocketProtocol};
use fidius_host::interface::file;
use fidius_host::{HostBuilder, Interface, LoadOptions, Plugin, Status};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn dialer() -> Arc<Interface> {
    Arc::new(file::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-c/interfaces/dialer.toml")).unwrap())
}

fn load(policy: Option<EgressPolicy>) -> fidius_host::Result<Plugin> {
    let options = LoadOptions::with_interface(dialer()).egress_policy(policy).clone();
    HostBuilder::new().build().unwrap().load_path_with(&fixture("wasm/dialer"), None, &options)
}

/// A TCP server on 127.0.0.1 answering "echo: <what it read>" per connection.
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut got = String::new();
            let _ = stream.read_to_string(&mut got);
            let _ = stream.write_all(format!("echo: {got}").as_bytes());
        }
    });
    addr
}

fn allow(patterns: &[&str]) -> EgressPolicy {
    EgressPolicy::allow_list(patterns).unwrap()
}

fn exchange(plugin: &Plugin, addr: SocketAddr) -> fidius_host::Result<String> {
    plugin.call_json("tcp_exchange", &format!(r#"["{addr}", "hello"]"#))
}

#[test]
fn tcp_reaches_an_address_the_allow_list_names() {
    let addr = echo_server();
    let plugin = load(Some(allow(&[&addr.to_string()]))).unwrap();
    assert_eq!(exchange(&plugin, addr).unwrap(), r#""echo: hello""#);
    assert!(plugin.denied_requests().is_empty());
}

#[test]
fn tcp_to_an_address_the_policy_does_not_name_is_refused_and_logged() {
    let addr = echo_server();
    for policy in [allow(&["example.com", "127.0.0.1:1"]), allow(&[]), EgressPolicy::from_fn("http only", |_| true)] {
        let plugin = load(Some(policy.clone())).unwrap();
        let e = exchange(&plugin, addr).unwrap_err();
        assert_eq!(e.plugin_error().map(|p| p.code()), Some("SOCKET"), "{e}");
        let denied = plugin.denied_requests();
        assert_eq!(denied.len(), 1, "{denied:?}");
        assert_eq!((denied[0].method.as_str(), denied[0].url.clone()), ("TCP", format!("tcp://{addr}")));
        assert!(!denied[0].reason.is_empty());
    }
}

#[test]
fn a_policy_function_sees_each_socket_target() {
    let addr = echo_server();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let policy = EgressPolicy::from_fn("sockets to port", |_| false).with_sockets(move |target| {
        log.lock().unwrap().push((target.plugin.to_string(), target.protocol, target.host.map(str::to_string), target.addr));
        target.addr.port() == addr.port()
    });
    let plugin = load(Some(policy)).unwrap();
    assert_eq!(exchange(&plugin, addr).unwrap(), r#""echo: hello""#);
    assert_eq!(seen.lock().unwrap().as_slice(), [("SocketGuest".to_string(), SocketProtocol::Tcp, None, addr)]);
}

#[test]
fn udp_datagrams_go_out_only_to_allowed_addresses() {
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    receiver.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let addr = receiver.local_addr().unwrap();
    let send = |plugin: &Plugin| plugin.call_json("udp_send", &format!(r#"["{addr}", "ping"]"#));

    let plugin = load(Some(allow(&[&addr.to_string()]))).unwrap();
    assert_eq!(send(&plugin).unwrap(), "null");
    let mut buf = [0u8; 64];
    let (n, _) = receiver.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");

    let plugin = load(Some(allow(&["127.0.0.1:1"]))).unwrap();
    let e = send(&plugin).unwrap_err();
    assert_eq!(e.plugin_error().map(|p| p.code()), Some("SOCKET"), "{e}");
    assert_eq!(plugin.denied_requests()[0].url, format!("udp://{addr}"));
    receiver.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    assert!(receiver.recv_from(&mut buf).is_err(), "a denied datagram was delivered");
}

#[test]
fn a_package_that_opens_sockets_needs_a_policy_and_the_hosts_consent() {
    let e = load(None).unwrap_err();
    assert_eq!(e.status(), Status::NoEgressPolicy, "{e}");
    assert!(e.message().contains("\"tcp\" or \"udp\""), "{e}");
    let host = HostBuilder::new().deny_capability("udp").unwrap().egress_policy(Some(allow(&[]))).build().unwrap();
    let e = host.load_path_with(&fixture("wasm/dialer"), None, &LoadOptions::with_interface(dialer())).unwrap_err();
    assert_eq!(e.status(), Status::CapabilityDenied, "{e}");
}

fn exchange_by_name(plugin: &Plugin, port: u16) -> fidius_host::Result<String> {
    plugin.call_json("tcp_exchange", &format!(r#"["localhost:{port}", "hello"]"#))
}

#[test]
fn a_name_is_looked_up_only_when_the_policy_names_it() {
    let addr = echo_server();
    // The address is allowed, the name is not: the lookup is refused.
    let plugin = load(Some(allow(&[&addr.to_string()]))).unwrap();
    let e = exchange_by_name(&plugin, addr.port()).unwrap_err();
    assert_eq!(e.plugin_error().map(|p| p.code()), Some("SOCKET"), "{e}");
    let denied = plugin.denied_requests();
    assert_eq!((denied[0].method.as_str(), denied[0].url.as_str()), ("DNS", "dns://localhost"), "{denied:?}");
}

#[test]
fn a_trusted_name_cannot_lead_to_a_special_address_the_policy_does_not_name() {
    let addr = echo_server();
    let plugin = load(Some(allow(&[&format!("localhost:{}", addr.port())]))).unwrap();
    let e = exchange_by_name(&plugin, addr.port()).unwrap_err();
    assert_eq!(e.plugin_error().map(|p| p.code()), Some("SOCKET"), "{e}");
    let denied = plugin.denied_requests();
    assert_eq!(denied[0].url, "dns://localhost", "{denied:?}");
    assert!(denied[0].reason.contains("special addresses the policy does not name: 127.0.0.1"), "{denied:?}");
}

#[test]
fn a_looked_up_name_reaches_the_policy_with_the_address_it_was_pinned_to() {
    let addr = echo_server();
    // The name (for this port) and the address itself (any port) are named.
    let plugin = load(Some(allow(&[&format!("localhost:{}", addr.port()), "127.0.0.1"]))).unwrap();
    assert_eq!(exchange_by_name(&plugin, addr.port()).unwrap(), r#""echo: hello""#);

    let seen = Arc::new(Mutex::new(Vec::new()));
    let (dns_log, socket_log) = (seen.clone(), seen.clone());
    let policy = EgressPolicy::from_fn("by name", |_| false)
        .with_dns(move |lookup| {
            dns_log.lock().unwrap().push(format!("dns {}", lookup.name));
            true
        })
        .with_sockets(move |target| {
            socket_log.lock().unwrap().push(format!("{:?} {:?} {}", target.protocol, target.host, target.addr));
            target.host == Some("localhost") || target.addr.port() == 0 || target.host.is_none()
        });
    let plugin = load(Some(policy)).unwrap();
    assert_eq!(exchange_by_name(&plugin, addr.port()).unwrap(), r#""echo: hello""#);
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0], "dns localhost");
    assert!(seen.contains(&format!("Tcp Some(\"localhost\") {addr}")), "{seen:?}");
}
