//! What the fuzz targets share: the bounds that turn a bug into a crash
//! libFuzzer records (with the input saved), and the interface file round
//! trip.
//!
//! A panic is a crash already (libfuzzer-sys aborts on it), and so is any
//! deadly signal. Two bounds need help on a stable toolchain, which has no
//! sanitizer runtime:
//! - libFuzzer enforces `-malloc_limit_mb` only through a sanitizer's malloc
//!   hooks, so the global allocator below enforces it itself;
//! - a stack overflow is a SIGSEGV on the guard page, and libFuzzer's handler
//!   cannot run on the exhausted stack; [`init`] gives the main thread an
//!   alternate signal stack and a SIGSEGV handler that names the overflow and
//!   aborts, which libFuzzer then reports as a deadly signal.

use fidius_host::interface::{file, Interface};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// libFuzzer's default `-rss_limit_mb`, which `-malloc_limit_mb` defaults to.
const DEFAULT_LIMIT_MB: usize = 2048;

/// The largest single allocation, in bytes.
static MALLOC_LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// The lowest address of the main thread's stack (0 when unknown).
static STACK_END: AtomicUsize = AtomicUsize::new(0);

/// Room for libFuzzer's crash report, which runs on the alternate stack.
const ALT_STACK_SIZE: usize = 256 << 10;

/// Call first in every target (`fuzz_target!(init: fidius_fuzz::init(), …)`).
pub fn init() {
    let rss_mb = flag("-rss_limit_mb").unwrap_or(DEFAULT_LIMIT_MB);
    // As in libFuzzer: 0 means "as -rss_limit_mb", and a 0 RSS limit means none.
    let malloc_mb = flag("-malloc_limit_mb").filter(|mb| *mb > 0).unwrap_or(rss_mb);
    if malloc_mb > 0 {
        MALLOC_LIMIT.store(malloc_mb.saturating_mul(1 << 20), Ordering::Relaxed);
    }
    // SAFETY: plain libc calls on values set up here; the alternate stack is
    // leaked, so it outlives every signal.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) == 0 {
            let mut addr = std::ptr::null_mut();
            let mut size = 0;
            if libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0 {
                STACK_END.store(addr as usize, Ordering::Relaxed);
            }
            libc::pthread_attr_destroy(&mut attr);
        }
        let alt = Vec::leak(vec![0u8; ALT_STACK_SIZE]);
        let stack = libc::stack_t { ss_sp: alt.as_mut_ptr().cast(), ss_flags: 0, ss_size: alt.len() };
        libc::sigaltstack(&stack, std::ptr::null_mut());
        // libFuzzer installs its own SIGSEGV handler after this one, keeps
        // SA_ONSTACK because this one has it, and calls this one first.
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_segv as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut());
    }
}

/// The last `name=N` among the program's arguments (libFuzzer's flags).
fn flag(name: &str) -> Option<usize> {
    std::env::args().rev().find_map(|arg| arg.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

extern "C" fn on_segv(_signal: libc::c_int, info: *mut libc::siginfo_t, _context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let end = STACK_END.load(Ordering::Relaxed);
    // Below the stack's end lies the kernel's guard gap (1 MiB); a frame
    // may also skip past the end by a little.
    let overflow = end != 0 && (end.saturating_sub(1 << 20)..end.saturating_add(64 << 10)).contains(&addr);
    let message: &[u8] = if overflow {
        b"==ERROR: fuzz: stack overflow (SIGSEGV at the end of the main thread's stack)\n"
    } else {
        b"==ERROR: fuzz: SIGSEGV\n"
    };
    write_stderr(&[message]);
    // SAFETY: abort is async-signal-safe; libFuzzer's SIGABRT handler then
    // reports a deadly signal and saves the input.
    unsafe { libc::abort() }
}

/// The system allocator, aborting on any single allocation above
/// `-malloc_limit_mb`.
struct Bounded;

#[global_allocator]
static ALLOCATOR: Bounded = Bounded;

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Bounded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check_size(new_size);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

fn check_size(size: usize) {
    if size > MALLOC_LIMIT.load(Ordering::Relaxed) {
        // No formatting here: it would allocate.
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        let mut n = size;
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        write_stderr(&[b"==ERROR: fuzz: out-of-memory (malloc(", &digits[start..], b") is above -malloc_limit_mb)\n"]);
        // SAFETY: ends the process; libFuzzer saves the input on SIGABRT.
        unsafe { libc::abort() }
    }
}

fn write_stderr(parts: &[&[u8]]) {
    for part in parts {
        // SAFETY: writes a live buffer to fd 2; async-signal-safe.
        unsafe { libc::write(2, part.as_ptr().cast(), part.len()) };
    }
}

/// An interface printed as an interface file ([`file::to_toml`]) must parse
/// back to an equal interface with the same hash, and print the same text.
pub fn assert_round_trip(interface: &Interface) {
    let text = file::to_toml(interface);
    let again = match file::parse(&text, "to_toml") {
        Ok(again) => again,
        Err(e) => panic!("to_toml printed a file that does not parse back: {}\n{text}", e.message()),
    };
    assert_eq!(again.hash(), interface.hash(), "the hash changed in the round trip:\n{text}");
    assert!(again == *interface, "the interface changed in the round trip:\n{text}\n{interface:#?}\n{again:#?}");
    assert_eq!(file::to_toml(&again), text, "to_toml printed the re-parsed interface differently");
}
