//! Confinement a worker process puts itself under when the host asks for
//! it, beyond its caps: each part off by default, each needing a kernel
//! feature (no new privileges: Linux 3.5; seccomp filters: 3.5; Landlock:
//! 5.13, and 6.12 for its signal scope). A part the kernel cannot apply
//! fails the load: the host asked for it, so a worker never runs silently
//! without it.

use crate::error::{Error, Result, Status};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The parts of a worker's confinement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardening {
    /// `PR_SET_NO_NEW_PRIVS`: nothing the worker executes gains privileges
    /// (set-user-ID programs, file capabilities).
    pub no_new_privileges: bool,
    /// A seccomp filter on every thread: creating a socket or socket pair
    /// of any family, and setting up io_uring (which could create one past
    /// the filter), fail with `EACCES`. The worker's own socket to its
    /// host exists before, so no new connection of any kind can be made:
    /// not to the network, nor to a UNIX socket by path.
    pub deny_network: bool,
    /// Landlock, once the plugin is loaded: files can be read only beneath
    /// the plugin's own path and what its runtime reads while it runs (a
    /// Python interpreter's module directories); nothing can be written,
    /// created or removed; and the worker can signal no process outside
    /// itself (the host included) nor connect to an abstract UNIX socket
    /// made outside it.
    pub confine_filesystem: bool,
}

impl Hardening {
    pub const NO_NEW_PRIVILEGES: u32 = 1;
    pub const DENY_NETWORK: u32 = 2;
    pub const CONFINE_FILESYSTEM: u32 = 4;

    /// The parts a bit set names.
    pub fn from_flags(flags: u32) -> Result<Hardening> {
        let known = Self::NO_NEW_PRIVILEGES | Self::DENY_NETWORK | Self::CONFINE_FILESYSTEM;
        if flags & !known != 0 {
            return Err(Error::new(
                Status::InvalidArgument,
                format!("worker hardening flags {flags:#x} hold unknown bits {:#x} (expected a combination of 1, 2 and 4)", flags & !known),
            ));
        }
        Ok(Hardening {
            no_new_privileges: flags & Self::NO_NEW_PRIVILEGES != 0,
            deny_network: flags & Self::DENY_NETWORK != 0,
            confine_filesystem: flags & Self::CONFINE_FILESYSTEM != 0,
        })
    }
}

/// What applies to the whole worker before any plugin file is read: no
/// new privileges (which the other two parts need too), and the network
/// filter on every thread.
pub fn apply_before_load(hardening: &Hardening) -> Result<()> {
    if hardening.no_new_privileges || hardening.deny_network || hardening.confine_filesystem {
        // SAFETY: plain prctl.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(refused("no new privileges (PR_SET_NO_NEW_PRIVS)", std::io::Error::last_os_error()));
        }
    }
    if hardening.deny_network {
        deny_network()?;
    }
    Ok(())
}

fn deny_network() -> Result<()> {
    use seccompiler::SeccompAction;
    use seccompiler::SeccompFilter;
    let build = || -> std::result::Result<seccompiler::BpfProgram, seccompiler::Error> {
        // An empty rule list: the call is refused whatever its arguments.
        let rules = [(libc::SYS_socket, vec![]), (libc::SYS_socketpair, vec![]), (libc::SYS_io_uring_setup, vec![])];
        let arch = std::env::consts::ARCH.try_into()?;
        let filter = SeccompFilter::new(rules.into_iter().collect(), SeccompAction::Allow, SeccompAction::Errno(libc::EACCES as u32), arch)?;
        Ok(filter.try_into()?)
    };
    let program = build().map_err(|e| refused("the network filter (seccomp)", e))?;
    seccompiler::apply_filter_all_threads(&program).map_err(|e| refused("the network filter (seccomp)", e))
}

/// Landlock on the calling thread: read-only beneath `readable`, nothing
/// else, no signal out of the worker. Every thread of the worker must be
/// confined this way or by [`deny_all_files`]: Landlock applies to the
/// thread that asks and the threads it starts later.
pub fn confine_filesystem(readable: &[PathBuf]) -> Result<()> {
    use landlock::{path_beneath_rules, AccessFs, RulesetCreatedAttr, ABI};
    let read = AccessFs::from_read(ABI::V7);
    let ruleset = landlock_ruleset()
        .and_then(|ruleset| ruleset.add_rules(path_beneath_rules(readable, read)))
        .map_err(|e| refused("filesystem confinement (Landlock)", e))?;
    enforce(ruleset)
}

/// Landlock on the calling thread, granting no file at all.
pub fn deny_all_files() -> Result<()> {
    enforce(landlock_ruleset().map_err(|e| refused("filesystem confinement (Landlock)", e))?)
}

/// A ruleset that handles every filesystem right and signal scope this
/// library knows (the kernel may know fewer: see [`enforce`]).
fn landlock_ruleset() -> std::result::Result<landlock::RulesetCreated, landlock::RulesetError> {
    use landlock::{Access, AccessFs, Ruleset, RulesetAttr, Scope, ABI};
    Ruleset::default().handle_access(AccessFs::from_all(ABI::V7))?.scope(Scope::Signal | Scope::AbstractUnixSocket)?.create()
}

fn enforce(ruleset: landlock::RulesetCreated) -> Result<()> {
    use landlock::RulesetStatus;
    let status = ruleset.restrict_self().map_err(|e| refused("filesystem confinement (Landlock)", e))?;
    match status.ruleset {
        RulesetStatus::FullyEnforced | RulesetStatus::PartiallyEnforced => Ok(()),
        RulesetStatus::NotEnforced => Err(Error::new(
            Status::Unsupported,
            "filesystem confinement was asked for, and this kernel does not offer Landlock (Linux 5.13 or later, enabled at boot)",
        )),
    }
}

/// How many threads this process has (from /proc/self/task).
pub fn thread_count() -> Result<usize> {
    std::fs::read_dir("/proc/self/task")
        .map(|entries| entries.count())
        .map_err(|e| Error::new(Status::Io, format!("listing the worker's threads in /proc/self/task: {e}")))
}

fn refused(what: &str, error: impl std::fmt::Display) -> Error {
    Error::new(Status::Unsupported, format!("the worker could not apply {what}, which the host asked for: {error}"))
}
