//! Starting, stopping and burying worker processes.

use crate::error::{Error, Result, Status};
use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The file name of the worker executable.
pub const WORKER_NAME: &str = "fidius-host-worker";

/// The descriptor a worker finds its socket on.
pub const WORKER_SOCKET_FD: i32 = 3;

/// How long a worker whose socket was closed may take to finish (its
/// plugin's destructor runs) before it is killed.
const EXIT_GRACE: Duration = Duration::from_millis(500);

/// The default worker executable: next to the file this library's code is
/// in (the shared library, or the program it is linked into), or in
/// `../libexec` from there, as `make install` lays it out.
pub fn default_worker_path() -> Option<PathBuf> {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: any address in this library; `info` is written on success.
    let found = unsafe { libc::dladdr(default_worker_path as *const libc::c_void, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr returns a NUL-terminated path.
    let object = Path::new(std::ffi::OsStr::from_bytes(unsafe { std::ffi::CStr::from_ptr(info.dli_fname) }.to_bytes()));
    let object = std::fs::canonicalize(object).ok()?;
    let dir = object.parent()?;
    [dir.join(WORKER_NAME), dir.join("../libexec").join(WORKER_NAME)].into_iter().find(|p| p.is_file())
}

/// A running worker process.
pub struct Child {
    pid: libc::pid_t,
    reaped: Option<Ending>,
    /// What it used, once reaped (from `wait4`).
    used: Option<Resources>,
}

/// What a worker process used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU time, user and system.
    pub cpu_time: Duration,
    /// Peak resident memory, in bytes.
    pub peak_memory: u64,
}

impl Resources {
    /// The figures of two workers one after the other: CPU time adds up,
    /// the peak is the larger one.
    pub fn then(self, other: Resources) -> Resources {
        Resources { cpu_time: self.cpu_time + other.cpu_time, peak_memory: self.peak_memory.max(other.peak_memory) }
    }
}

/// How a worker process ended.
#[derive(Debug, Clone, Copy)]
pub enum Ending {
    Exited(i32),
    Signaled(i32),
    /// Someone else reaped it (a program's own SIGCHLD handler).
    Unknown,
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Ending::Exited(code) => write!(f, "exited with code {code}"),
            Ending::Signaled(signal) => write!(f, "was killed by signal {signal} ({})", signal_name(signal)),
            Ending::Unknown => f.write_str("ended (its exit status was collected by someone else)"),
        }
    }
}

/// The usual name of a signal.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGSYS => "SIGSYS",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// Starts `executable` with one end of a new socket pair on descriptor 3,
/// standard input from /dev/null, standard output and error shared with
/// the host, an empty environment and no other descriptor. Returns the
/// child and the host's end.
pub fn spawn(executable: &Path) -> Result<(Child, OwnedFd)> {
    let unavailable = |what: String| Error::at(Status::WorkerUnavailable, executable, what);
    let program = CString::new(executable.as_os_str().as_bytes()).map_err(|_| unavailable("the path holds a NUL byte".into()))?;
    // Checked before spawning: a failed exec is not reported by every
    // posix_spawn (one run under valgrind forks, and the child just exits).
    if !executable.is_file() {
        return Err(unavailable("the worker executable does not exist or is not a file (set its path with the builder's worker path)".into()));
    }
    // SAFETY: a NUL-terminated path.
    if unsafe { libc::access(program.as_ptr(), libc::X_OK) } != 0 {
        return Err(unavailable(format!("the worker executable cannot be run: {}", std::io::Error::last_os_error())));
    }
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for two descriptors. Close-on-exec: no other
    // child the program starts inherits either end.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } != 0 {
        return Err(unavailable(format!("socketpair failed: {}", std::io::Error::last_os_error())));
    }
    // SAFETY: both descriptors were just created and are owned here.
    let (host_end, worker_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let pid = spawn_with_socket(&program, std::os::fd::AsRawFd::as_raw_fd(&worker_end)).map_err(|e| {
        unavailable(format!("could not start the worker executable: {e} (set its path with the builder's worker path)"))
    })?;
    drop(worker_end);
    Ok((Child { pid, reaped: None, used: None }, host_end))
}

fn spawn_with_socket(program: &CString, socket: i32) -> std::io::Result<libc::pid_t> {
    // SAFETY: plain posix_spawn set-up; every object is initialized before
    // use and destroyed after.
    unsafe {
        let mut actions: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        let mut attributes: libc::posix_spawnattr_t = std::mem::zeroed();
        libc::posix_spawn_file_actions_init(&mut actions);
        libc::posix_spawnattr_init(&mut attributes);
        let null = c"/dev/null";
        libc::posix_spawn_file_actions_addopen(&mut actions, 0, null.as_ptr(), libc::O_RDONLY, 0);
        // dup2 clears close-on-exec on the copy (also when the numbers agree).
        libc::posix_spawn_file_actions_adddup2(&mut actions, socket, WORKER_SOCKET_FD);
        // Default signal handling and an empty mask: nothing of the host's
        // signal set-up reaches the plugin.
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigemptyset(&mut none);
        libc::posix_spawnattr_setsigdefault(&mut attributes, &all);
        libc::posix_spawnattr_setsigmask(&mut attributes, &none);
        libc::posix_spawnattr_setflags(&mut attributes, (libc::POSIX_SPAWN_SETSIGDEF | libc::POSIX_SPAWN_SETSIGMASK) as libc::c_short);
        let argv = [program.as_ptr(), std::ptr::null()];
        let envp: [*const libc::c_char; 1] = [std::ptr::null()];
        let mut pid: libc::pid_t = 0;
        let status = libc::posix_spawn(
            &mut pid,
            program.as_ptr(),
            &actions,
            &attributes,
            argv.as_ptr() as *const *mut libc::c_char,
            envp.as_ptr() as *const *mut libc::c_char,
        );
        libc::posix_spawn_file_actions_destroy(&mut actions);
        libc::posix_spawnattr_destroy(&mut attributes);
        if status != 0 {
            return Err(std::io::Error::from_raw_os_error(status));
        }
        Ok(pid)
    }
}

impl Child {
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Kills the worker now and collects how it ended.
    pub fn kill(&mut self) -> Ending {
        if self.reaped.is_none() {
            // SAFETY: our own unreaped child: the pid cannot have been reused.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
        self.wait()
    }

    /// Waits for the worker to end (it is ending: its socket closed, or it
    /// was killed) and collects how.
    pub fn wait(&mut self) -> Ending {
        if let Some(ending) = self.reaped {
            return ending;
        }
        let ending = loop {
            let mut status = 0;
            // SAFETY: a zeroed rusage is valid; waits for our own child.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            let pid = unsafe { libc::wait4(self.pid, &mut status, 0, &mut usage) };
            if pid == self.pid {
                self.used = Some(resources_of(&usage));
                break ending_of(status);
            }
            if pid < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            break Ending::Unknown;
        };
        self.reaped = Some(ending);
        ending
    }

    /// How the worker ended, if it has; never blocks.
    fn try_wait(&mut self) -> Option<Ending> {
        if self.reaped.is_none() {
            let mut status = 0;
            // SAFETY: a zeroed rusage is valid; polls our own child.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            let pid = unsafe { libc::wait4(self.pid, &mut status, libc::WNOHANG, &mut usage) };
            if pid == self.pid {
                self.used = Some(resources_of(&usage));
                self.reaped = Some(ending_of(status));
            } else if pid < 0 {
                self.reaped = Some(Ending::Unknown);
            }
        }
        self.reaped
    }

    /// What the worker used: its final figures once it ended, so far while
    /// it runs (from `/proc`; zero where that cannot be read).
    pub fn resources(&self) -> Resources {
        self.used.unwrap_or_else(|| running_resources(self.pid))
    }

    /// Lets a worker whose socket was closed finish, killing it if it takes
    /// longer than a short grace.
    pub fn finish(&mut self) {
        let deadline = Instant::now() + EXIT_GRACE;
        let mut pause = Duration::from_micros(50);
        while self.try_wait().is_none() {
            if Instant::now() >= deadline {
                self.kill();
                return;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.reaped.is_none() {
            self.kill();
        }
    }
}

fn resources_of(usage: &libc::rusage) -> Resources {
    let time = |t: libc::timeval| Duration::new(t.tv_sec.max(0) as u64, (t.tv_usec.clamp(0, 999_999) * 1000) as u32);
    Resources {
        cpu_time: time(usage.ru_utime) + time(usage.ru_stime),
        // Linux reports kilobytes.
        peak_memory: (usage.ru_maxrss.max(0) as u64).saturating_mul(1024),
    }
}

/// The figures of running process `pid`: CPU time from `/proc/PID/stat`,
/// peak resident memory (`VmHWM`) from `/proc/PID/status`.
fn running_resources(pid: libc::pid_t) -> Resources {
    let stat = read_proc(pid, "stat");
    // The fields after the command name (which may hold spaces and
    // parentheses): state is the first, utime the 12th, stime the 13th.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // SAFETY: plain query.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let cpu_ticks = ticks(11).saturating_add(ticks(12));
    let cpu_time = Duration::from_secs(cpu_ticks / per_second) + Duration::from_nanos((cpu_ticks % per_second) * 1_000_000_000 / per_second);
    let status = read_proc(pid, "status");
    let peak_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    Resources { cpu_time, peak_memory: peak_kib.saturating_mul(1024) }
}

/// A small `/proc` file of `pid`, at most 16 KiB of it; empty when it
/// cannot be read.
fn read_proc(pid: libc::pid_t, name: &str) -> String {
    use std::io::Read;
    let mut text = String::new();
    if let Ok(file) = std::fs::File::open(format!("/proc/{pid}/{name}")) {
        let _ = file.take(16 << 10).read_to_string(&mut text);
    }
    text
}

fn ending_of(status: i32) -> Ending {
    if libc::WIFEXITED(status) {
        Ending::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Ending::Signaled(libc::WTERMSIG(status))
    } else {
        Ending::Unknown
    }
}
