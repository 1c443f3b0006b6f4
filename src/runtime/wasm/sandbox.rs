//! What a WASM guest may touch: fidius capabilities turned into a WASI
//! context that grants exactly those, and nothing by default.

use crate::egress::{DenialLog, EgressPolicy, SocketProtocol, SocketTarget};
use super::name_lookup::Pins;
use crate::error::{Error, Result, Status};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

/// The grants of one plugin, checked at load.
#[derive(Debug, Clone, Default)]
pub struct Sandbox {
    args: bool,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    env: Vec<(String, String)>,
    dirs: Vec<(PathBuf, FsPerms)>,
    http: bool,
    tcp: bool,
    udp: bool,
}

/// What a guest's sockets go through: the policy that decides each target
/// and lookup, the log of what it denied, and what the store's lookups
/// pinned.
#[derive(Clone)]
pub struct SocketGate {
    pub plugin: Arc<str>,
    pub policy: EgressPolicy,
    pub denials: Arc<DenialLog>,
    /// The protocol lookup answers are checked for (TCP when granted).
    pub answers_for: SocketProtocol,
    pub pins: Pins,
}

impl SocketGate {
    /// This gate for a new store, with no pins.
    pub fn for_new_store(&self) -> SocketGate {
        SocketGate { pins: Pins::default(), ..self.clone() }
    }
}

impl Sandbox {
    /// Checks a package's capabilities against fidius 0.5.9's vocabulary and
    /// the host's denials. Stricter than upstream: a directory grant of the
    /// whole filesystem is refused, and unpoliced sockets (`network`,
    /// `sockets`) are not offered (`http`, `tcp` and `udp` are, through the
    /// egress policy).
    pub fn from_capabilities(package: &Path, capabilities: &[String], denied: &[String]) -> Result<Sandbox> {
        let mut sandbox = Sandbox::default();
        for capability in capabilities {
            let invalid = |why: &str| {
                Error::at(Status::InvalidCapability, package, format!("capability \"{capability}\": {why}"))
            };
            if let Some(rule) = denied.iter().find(|rule| denies(rule, capability)) {
                return Err(Error::at(
                    Status::CapabilityDenied,
                    package,
                    format!("the package asks for capability \"{capability}\", which the host denies (\"{rule}\")"),
                ));
            }
            match capability.as_str() {
                "args" => sandbox.args = true,
                "stdin" => sandbox.stdin = true,
                "stdout" => sandbox.stdout = true,
                "stderr" => sandbox.stderr = true,
                // WASI always provides clocks and randomness; fidius accepts the names.
                "clocks" | "random" => {}
                "network" | "sockets" => {
                    return Err(invalid(
                        "unpoliced network access is not offered by this host (declare \"tcp\" or \"udp\", which go through the egress policy)",
                    ));
                }
                // Requests and sockets still go through the host's egress policy.
                "http" => sandbox.http = true,
                "tcp" => sandbox.tcp = true,
                "udp" => sandbox.udp = true,
                other => {
                    if let Some(name) = other.strip_prefix("env:") {
                        if name.is_empty() {
                            return Err(invalid("names no variable"));
                        }
                        if let Ok(value) = std::env::var(name) {
                            sandbox.env.push((name.to_string(), value));
                        }
                    } else if let Some(path) = other.strip_prefix("fs:ro:") {
                        sandbox.grant_dir(path, FsPerms::ReadOnly).map_err(|e| invalid(&e))?;
                    } else if let Some(path) = other.strip_prefix("fs:rw:") {
                        sandbox.grant_dir(path, FsPerms::ReadWrite).map_err(|e| invalid(&e))?;
                    } else {
                        return Err(invalid(
                            "unknown (expected args, stdin, stdout, stderr, clocks, random, http, tcp, udp, env:NAME, fs:ro:PATH or fs:rw:PATH)",
                        ));
                    }
                }
            }
        }
        Ok(sandbox)
    }

    /// A directory grant: an absolute path, preopened at the same guest
    /// path. A missing directory grants nothing (as upstream); the root of
    /// the filesystem is refused.
    fn grant_dir(&mut self, path: &str, perms: FsPerms) -> std::result::Result<(), String> {
        if path.is_empty() {
            return Err("names no directory".into());
        }
        let path = Path::new(path);
        if !path.is_absolute() {
            return Err("the directory must be an absolute path".into());
        }
        let Ok(real) = std::fs::canonicalize(path) else { return Ok(()) };
        if real.parent().is_none() {
            return Err("grants the whole filesystem".into());
        }
        self.dirs.push((real, perms));
        Ok(())
    }

    /// Whether the package may send HTTP requests (`wasi:http`), subject to
    /// the egress policy.
    pub fn http(&self) -> bool {
        self.http
    }

    /// Whether the package may open sockets (`tcp`, `udp`), subject to the
    /// egress policy.
    pub fn sockets(&self) -> bool {
        self.tcp || self.udp
    }

    /// Whether it may open TCP connections.
    pub fn tcp(&self) -> bool {
        self.tcp
    }

    /// A fresh WASI context with exactly these grants; sockets through
    /// `gate` (none without one).
    pub fn wasi_ctx(&self, gate: Option<&SocketGate>) -> Result<WasiCtx> {
        let mut builder = WasiCtxBuilder::new();
        if self.args {
            builder.args(&std::env::args().collect::<Vec<_>>());
        }
        if self.stdin {
            builder.inherit_stdin();
        }
        if self.stdout {
            builder.inherit_stdout();
        }
        if self.stderr {
            builder.inherit_stderr();
        }
        for (name, value) in &self.env {
            builder.env(name, value);
        }
        for (dir, perms) in &self.dirs {
            let guest = dir.to_string_lossy();
            builder
                .preopened_dir(dir, guest.as_ref(), *perms)
                .map_err(|e| Error::at(Status::Io, dir, format!("cannot open the granted directory: {e}")))?;
        }
        // WASI's own lookup is replaced (see `name_lookup`); this flag only
        // guards WASI's.
        builder.allow_ip_name_lookup(false);
        match gate {
            Some(gate) if self.sockets() => {
                builder.allow_tcp(self.tcp).allow_udp(self.udp);
                let (gate, tcp, udp) = (gate.clone(), self.tcp, self.udp);
                builder.socket_addr_check(move |addr, use_| {
                    let allowed = gate.allows(addr, use_, tcp, udp);
                    Box::pin(async move { allowed })
                });
            }
            _ => {
                builder.allow_tcp(false).allow_udp(false);
            }
        }
        Ok(builder.build())
    }
}

impl SocketGate {
    /// Whether a guest holding the `tcp` / `udp` grants may use `addr` so.
    /// Outbound targets go to the policy (and denials to the log); a local
    /// bind only to the wildcard address (the one made before a connect or
    /// a datagram), and never a listener.
    fn allows(&self, addr: SocketAddr, use_: SocketAddrUse, tcp: bool, udp: bool) -> bool {
        let protocol = match use_ {
            SocketAddrUse::TcpConnect if tcp => SocketProtocol::Tcp,
            SocketAddrUse::UdpSend if udp => SocketProtocol::Udp,
            SocketAddrUse::TcpBind => return tcp && addr.ip().is_unspecified(),
            SocketAddrUse::UdpBind => return udp && addr.ip().is_unspecified(),
            _ => return false,
        };
        let host = self.pins.name_of(addr.ip());
        let target = SocketTarget { plugin: &self.plugin, protocol, host: host.as_deref(), addr };
        match self.policy.allows_socket(&target) {
            Ok(()) => true,
            Err(reason) => {
                self.denials.record_socket(&target, reason);
                false
            }
        }
    }
}

/// Whether a host denial rule covers a capability: the same name, or a
/// prefix ending at `:` (`fs` denies `fs:ro:/x`, `env` denies `env:HOME`).
fn denies(rule: &str, capability: &str) -> bool {
    capability == rule || capability.strip_prefix(rule).is_some_and(|rest| rest.starts_with(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn vocabulary_and_denials() {
        let pkg = Path::new("/pkg");
        assert!(Sandbox::from_capabilities(pkg, &caps(&["stdout", "clocks", "env:HOME", "fs:ro:/tmp"]), &[]).is_ok());
        for (bad, status) in [
            ("fs:rw:/", Status::InvalidCapability),
            ("fs:ro:/", Status::InvalidCapability),
            ("fs:rw:relative", Status::InvalidCapability),
            ("fs", Status::InvalidCapability),
            ("env", Status::InvalidCapability),
            ("env:", Status::InvalidCapability),
            ("network", Status::InvalidCapability),
            ("teleport", Status::InvalidCapability),
        ] {
            let e = Sandbox::from_capabilities(pkg, &caps(&[bad]), &[]).unwrap_err();
            assert_eq!(e.status(), status, "{bad}");
            assert!(e.message().contains(bad), "{}", e.message());
        }
        let e = Sandbox::from_capabilities(pkg, &caps(&["fs:ro:/tmp"]), &caps(&["fs"])).unwrap_err();
        assert_eq!(e.status(), Status::CapabilityDenied);
        assert!(denies("env", "env:HOME") && !denies("env", "environment") && denies("stdout", "stdout"));
    }
}
