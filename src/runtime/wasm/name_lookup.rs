//! `wasi:sockets/ip-name-lookup` for guests that open sockets: every lookup
//! goes through the egress policy, and what it resolved to is pinned.
//!
//! WASI's own lookup resolves any name; this one replaces it. A lookup is
//! asked of the policy first (denied: the guest sees a resolver failure, and
//! the denial is logged). The host resolves the name, drops answers in
//! special ranges (loopback, private, …) unless the policy allows that very
//! address — so a trusted name cannot be pointed at the host's own network
//! (DNS rebinding) — and pins each answer to the name in the store's
//! [`Pins`]. A connect then reaches the policy with the name the guest
//! dialed, but only for an address a lookup of that name gave this guest.
//! Resolution runs on a blocking thread; the guest waits for it like for
//! any pollable, within its call's deadline. The policy is asked on the
//! thread that called the plugin, when the guest takes the answers.

use super::sandbox::SocketGate;
use super::store::GuestState;
use crate::egress::DnsLookup;
use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime::StoreContextMut;
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress};
use wasmtime_wasi::p2::Network;
use wasmtime_wasi::runtime::{poll_noop, spawn_blocking, AbortOnDropJoinHandle};
use wasmtime_wasi_io::poll::{subscribe, Pollable};

/// The WASI version whose lookup is replaced (what wasmtime-wasi defines;
/// guests importing an older 0.2 version link to it too).
const INSTANCE: &str = "wasi:sockets/ip-name-lookup@0.2.12";

/// Longest name looked up (DNS allows 253 characters).
const MAX_NAME: usize = 253;

/// Most addresses pinned per store; past it the pins start over.
const MAX_PINS: usize = 4096;

/// What a store's lookups resolved: address → the name it was given for
/// (the latest lookup wins).
#[derive(Clone, Default)]
pub struct Pins(Arc<Mutex<HashMap<IpAddr, String>>>);

impl Pins {
    /// The name a lookup gave `ip` for, if any.
    pub fn name_of(&self, ip: IpAddr) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(&ip.to_canonical()).cloned()
    }

    /// Pins `ips` to `name`, replacing what an earlier lookup of it pinned.
    fn record(&self, name: &str, ips: &[IpAddr]) {
        let mut pins = self.0.lock().unwrap_or_else(|p| p.into_inner());
        pins.retain(|_, pinned| pinned != name);
        if pins.len() + ips.len() > MAX_PINS {
            pins.clear();
        }
        for ip in ips {
            pins.insert(*ip, name.to_string());
        }
    }
}

/// One guest lookup: resolving (on a blocking thread), or the addresses
/// the guest gets.
pub enum Lookup {
    Resolving { task: AbortOnDropJoinHandle<Result<Vec<IpAddr>, ErrorCode>>, gate: SocketGate, name: String },
    Done(Result<std::vec::IntoIter<IpAddr>, ErrorCode>),
}

impl Lookup {
    /// Settles a finished resolution: the answers the guest may have,
    /// pinned. Runs on the thread that called the plugin, like every
    /// question asked of the policy.
    fn settle(&mut self, answers: Result<Vec<IpAddr>, ErrorCode>) {
        if let Lookup::Resolving { gate, name, .. } = self {
            let admitted = answers.and_then(|answers| admit(gate, name, answers));
            *self = Lookup::Done(admitted.map(Vec::into_iter));
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Lookup {
    async fn ready(&mut self) {
        if let Lookup::Resolving { task, .. } = self {
            let answers = task.await;
            self.settle(answers);
        }
    }
}

/// Replaces WASI's `ip-name-lookup` in `linker` (which must already hold
/// WASI).
pub fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let added = add(linker);
    linker.allow_shadowing(false);
    added
}

fn add(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    let mut instance = linker.instance(INSTANCE)?;
    instance.resource("resolve-address-stream", ResourceType::host::<Lookup>(), |mut store, rep| {
        store.data_mut().table.delete(Resource::<Lookup>::new_own(rep))?;
        Ok(())
    })?;
    instance.func_wrap(
        "resolve-addresses",
        |mut store: StoreContextMut<'_, GuestState>, (network, name): (Resource<Network>, String)| {
            Ok((resolve_addresses(store.data_mut(), network, name)?,))
        },
    )?;
    instance.func_wrap(
        "[method]resolve-address-stream.resolve-next-address",
        |mut store: StoreContextMut<'_, GuestState>, (lookup,): (Resource<Lookup>,)| {
            Ok((next_address(store.data_mut(), lookup)?,))
        },
    )?;
    instance.func_wrap(
        "[method]resolve-address-stream.subscribe",
        |mut store: StoreContextMut<'_, GuestState>, (lookup,): (Resource<Lookup>,)| {
            Ok((subscribe(&mut store.data_mut().table, lookup)?,))
        },
    )?;
    Ok(())
}

fn resolve_addresses(state: &mut GuestState, network: Resource<Network>, name: String) -> wasmtime::Result<Result<Resource<Lookup>, ErrorCode>> {
    state.table.get(&network)?;
    let Some(gate) = state.sockets.clone() else {
        // No `tcp` or `udp` grant: nothing to look up for.
        return Ok(Err(ErrorCode::PermanentResolverFailure));
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if let Ok(ip) = name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        // An address "resolves" to itself and pins nothing.
        return Ok(Ok(state.table.push(Lookup::Done(Ok(vec![ip.to_canonical()].into_iter())))?));
    }
    if name.is_empty() || name.len() > MAX_NAME || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_') {
        return Ok(Err(ErrorCode::InvalidArgument));
    }
    if let Err(reason) = gate.policy.allows_dns(&DnsLookup { plugin: &gate.plugin, name: &name }) {
        gate.denials.record_dns(&DnsLookup { plugin: &gate.plugin, name: &name }, reason);
        return Ok(Err(ErrorCode::PermanentResolverFailure));
    }
    let resolving = name.clone();
    let task = spawn_blocking(move || resolve(&resolving));
    Ok(Ok(state.table.push(Lookup::Resolving { task, gate, name })?))
}

/// Resolves `name` on the host.
fn resolve(name: &str) -> Result<Vec<IpAddr>, ErrorCode> {
    Ok((name, 0).to_socket_addrs().map_err(|_| ErrorCode::NameUnresolvable)?.map(|addr| addr.ip().to_canonical()).collect())
}

/// The answers the policy lets the guest have, pinned to `name` before the
/// guest sees any; the others are logged.
fn admit(gate: &SocketGate, name: &str, answers: Vec<IpAddr>) -> Result<Vec<IpAddr>, ErrorCode> {
    let (kept, refused): (Vec<IpAddr>, Vec<IpAddr>) =
        answers.into_iter().partition(|ip| gate.policy.allows_answer(&gate.plugin, gate.answers_for, *ip));
    if !refused.is_empty() {
        let refused = refused.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        let reason = format!("answered with special addresses the policy does not name: {refused}");
        gate.denials.record_dns(&DnsLookup { plugin: &gate.plugin, name }, &reason);
    }
    gate.pins.record(name, &kept);
    if kept.is_empty() {
        return Err(ErrorCode::NameUnresolvable);
    }
    Ok(kept)
}

fn next_address(state: &mut GuestState, lookup: Resource<Lookup>) -> wasmtime::Result<Result<Option<IpAddress>, ErrorCode>> {
    let lookup = state.table.get_mut(&lookup)?;
    if let Lookup::Resolving { task, .. } = lookup {
        match poll_noop(std::pin::Pin::new(task)) {
            Some(answers) => lookup.settle(answers),
            None => return Ok(Err(ErrorCode::WouldBlock)),
        }
    }
    Ok(match lookup {
        Lookup::Done(Ok(addresses)) => Ok(addresses.next().map(IpAddress::from)),
        Lookup::Done(Err(code)) => Err(*code),
        Lookup::Resolving { .. } => unreachable!("settled above"),
    })
}
