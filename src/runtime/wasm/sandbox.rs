//! What a WASM guest may touch: fidius capabilities turned into a WASI
//! context that grants exactly those, and nothing by default.

use crate::error::{Error, Result, Status};
use std::path::{Path, PathBuf};
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
}

impl Sandbox {
    /// Checks a package's capabilities against fidius 0.5.9's vocabulary and
    /// the host's denials. Stricter than upstream: a directory grant of the
    /// whole filesystem is refused, and raw sockets are not offered (`http`
    /// is, through the egress policy).
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
                "network" | "sockets" | "tcp" | "udp" => {
                    return Err(invalid("raw network access is not offered by this host"));
                }
                // Requests still go through the host's egress policy.
                "http" => sandbox.http = true,
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
                            "unknown (expected args, stdin, stdout, stderr, clocks, random, http, env:NAME, fs:ro:PATH or fs:rw:PATH)",
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

    /// A fresh WASI context with exactly these grants.
    pub fn wasi_ctx(&self) -> Result<WasiCtx> {
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
        builder.allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
        Ok(builder.build())
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
