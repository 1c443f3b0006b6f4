//! Output bytes handed out by the host: the one way results leave a plugin.
//!
//! A result is either bytes the host allocated, or a buffer a cdylib plugin
//! allocated, handed out without a copy and given back to the plugin's own
//! `free_buffer` when released. A plugin buffer keeps its library mapped, so
//! output may outlive the plugin handle that produced it. Outputs are
//! counted without a shared write per output ([`OutstandingCount`]), so
//! calls from several threads do not contend on one cache line.

use crossbeam_utils::CachePadded;
use std::any::Any;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

/// Releases buffers that foreign code allocated, and keeps that code
/// loaded while any of them is out. Owned by one plugin handle; its
/// outputs point to the shared state, which goes away when both the
/// handle and the last output are gone.
pub struct ForeignAllocator {
    state: NonNull<AllocatorState>,
}

struct AllocatorState {
    free: unsafe extern "C" fn(*mut u8, usize),
    _keep_alive: Arc<dyn Any + Send + Sync>,
    outstanding: OutstandingCount,
}

// SAFETY: the state is shared read-only but for its atomic counts; `free`
// is a plain function pointer and `keep_alive` is Send + Sync.
unsafe impl Send for ForeignAllocator {}
unsafe impl Sync for ForeignAllocator {}

impl ForeignAllocator {
    /// `free` releases a buffer; `keep_alive` keeps the code behind `free`
    /// loaded for as long as any buffer is outstanding.
    pub fn new(free: unsafe extern "C" fn(*mut u8, usize), keep_alive: Arc<dyn Any + Send + Sync>) -> ForeignAllocator {
        let state = Box::new(AllocatorState { free, _keep_alive: keep_alive, outstanding: OutstandingCount::new() });
        ForeignAllocator { state: NonNull::from(Box::leak(state)) }
    }

    /// Takes ownership of a buffer this allocator must release.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes that stay valid until they are
    /// given to this allocator's free function, which must accept them.
    pub unsafe fn output(&self, ptr: *mut u8, len: usize) -> OutputBytes {
        // SAFETY: the state lives while this handle does.
        unsafe { self.state.as_ref() }.outstanding.acquire();
        OutputBytes { ptr, len, foreign: Some(self.state) }
    }
}

impl Drop for ForeignAllocator {
    fn drop(&mut self) {
        // SAFETY: the state lives until both this handle and the last
        // output are gone; whichever is last frees it, once.
        unsafe {
            if self.state.as_ref().outstanding.close() {
                drop(Box::from_raw(self.state.as_ptr()));
            }
        }
    }
}

/// How many outputs of one allocator are out, without a shared write per
/// output: each CPU counts on its own cache line. (An output released on
/// another CPU than the one that made it leaves one line above zero and
/// another below: only the sum means anything.) When the owner closes, the
/// lines are folded into one total, which the last release brings to zero.
struct OutstandingCount {
    lines: Box<[CachePadded<AtomicI64>]>,
    /// After close, the outputs still out. It starts at [`FOLDING`], far
    /// above any count, so that releases during the fold cannot reach zero
    /// before close has added every line.
    total: AtomicI64,
}

/// What close leaves in a line: far below any count, so that a release
/// can tell from the value it replaced that the line was folded.
const FOLDED: i64 = i64::MIN / 2;
/// The total's offset while close folds the lines in.
const FOLDING: i64 = 1 << 62;

impl OutstandingCount {
    fn new() -> OutstandingCount {
        let lines = (0..line_count()).map(|_| CachePadded::new(AtomicI64::new(0))).collect();
        OutstandingCount { lines, total: AtomicI64::new(FOLDING) }
    }

    fn line(&self) -> &AtomicI64 {
        // The line count is a power of two.
        &self.lines[line_slot() & (self.lines.len() - 1)]
    }

    /// One more output. Only while the owner is open (a call runs on it).
    fn acquire(&self) {
        self.line().fetch_add(1, Ordering::Relaxed);
    }

    /// One output fewer; true when it was the last after close (the
    /// caller then frees the state).
    fn release(&self) -> bool {
        let before = self.line().fetch_sub(1, Ordering::AcqRel);
        // A folded line no longer counts: the release counts on the total.
        before <= FOLDED / 2 && self.total.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// The owner is gone and nothing acquires any more; true when no
    /// output is out (the caller then frees the state).
    fn close(&self) -> bool {
        for line in self.lines.iter() {
            let count = line.swap(FOLDED, Ordering::AcqRel);
            self.total.fetch_add(count, Ordering::AcqRel);
        }
        self.total.fetch_sub(FOLDING, Ordering::AcqRel) == FOLDING
    }
}

/// Lines per count: one per CPU the process may run on, rounded up to a
/// power of two (at most 64).
fn line_count() -> usize {
    static LINES: OnceLock<usize> = OnceLock::new();
    *LINES.get_or_init(|| usable_cpus().clamp(1, 64).next_power_of_two())
}

/// CPUs this process may run on. One system call: `available_parallelism`
/// also reads cgroup files (tens of microseconds at a process's first load),
/// and a CPU quota does not change how many threads run at once.
#[cfg(target_os = "linux")]
fn usable_cpus() -> usize {
    // SAFETY: an all-zero cpu_set_t is a valid empty set; the call fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a writable cpu_set_t of the size passed.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return 1;
    }
    // SAFETY: `set` was filled by the kernel.
    unsafe { libc::CPU_COUNT(&set) }.max(1) as usize
}

#[cfg(not(target_os = "linux"))]
fn usable_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The line to count on: the CPU this thread runs on. Threads running at
/// once are on different CPUs, so they write different lines. (glibc reads
/// the CPU from the thread's `rseq` area: cheaper than a thread-local
/// variable of a shared library, which takes a call to `__tls_get_addr`.)
#[cfg(target_os = "linux")]
fn line_slot() -> usize {
    // SAFETY: no arguments; -1 (no CPU number) counts on line 0.
    usize::try_from(unsafe { libc::sched_getcpu() }).unwrap_or(0)
}

/// The line to count on: this thread's, handed out round-robin at its
/// first output.
#[cfg(not(target_os = "linux"))]
fn line_slot() -> usize {
    use std::cell::Cell;
    use std::sync::atomic::AtomicUsize;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local!(static SLOT: Cell<usize> = const { Cell::new(usize::MAX) });
    SLOT.with(|slot| {
        if slot.get() == usize::MAX {
            slot.set(NEXT.fetch_add(1, Ordering::Relaxed) % 1024);
        }
        slot.get()
    })
}

/// A copy of `bytes` (an output already checked against the output limit),
/// allocated fallibly: a host short of memory gets an error, not an abort.
pub fn try_copy(bytes: &[u8]) -> crate::Result<Vec<u8>> {
    let mut copy = Vec::new();
    reserve(&mut copy, bytes.len())?;
    copy.extend_from_slice(bytes);
    Ok(copy)
}

/// Grows `buffer` to `len` bytes (new ones zeroed), allocated fallibly.
pub fn try_grow(buffer: &mut Vec<u8>, len: usize) -> crate::Result<()> {
    reserve(buffer, len)?;
    buffer.resize(len.max(buffer.len()), 0);
    Ok(())
}

/// Room for `len` bytes in `buffer`, or an error naming the size.
fn reserve(buffer: &mut Vec<u8>, len: usize) -> crate::Result<()> {
    buffer.try_reserve_exact(len.saturating_sub(buffer.len())).map_err(|_| {
        crate::Error::new(crate::Status::OutputTooLarge, format!("cannot allocate {len} bytes for an output"))
    })
}

/// Owned output bytes.
pub struct OutputBytes {
    ptr: *mut u8,
    len: usize,
    /// `None`: a `Box<[u8]>` of the host's.
    foreign: Option<NonNull<AllocatorState>>,
}

// SAFETY: the buffer is exclusively owned; the allocator is Send + Sync.
unsafe impl Send for OutputBytes {}
unsafe impl Sync for OutputBytes {}

/// The raw parts of [`OutputBytes`], for handing across a C boundary.
#[derive(Debug, Clone, Copy)]
pub struct RawOutput {
    /// Start of the bytes; NULL when `len` is 0.
    pub ptr: *mut u8,
    /// Number of bytes.
    pub len: usize,
    /// Opaque owner token; NULL for host-allocated bytes.
    pub owner: *const (),
}

impl OutputBytes {
    /// Bytes the host allocated.
    pub fn from_vec(bytes: Vec<u8>) -> OutputBytes {
        let boxed = bytes.into_boxed_slice();
        let len = boxed.len();
        OutputBytes { ptr: Box::into_raw(boxed) as *mut u8, len, foreign: None }
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: ptr/len describe an owned, initialized buffer.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Gives up ownership; [`OutputBytes::from_raw`] takes it back.
    pub fn into_raw(self) -> RawOutput {
        if self.len == 0 {
            return RawOutput { ptr: std::ptr::null_mut(), len: 0, owner: std::ptr::null() };
        }
        let this = std::mem::ManuallyDrop::new(self);
        let owner = this.foreign.map_or(std::ptr::null(), |state| state.as_ptr() as *const ());
        RawOutput { ptr: this.ptr, len: this.len, owner }
    }

    /// Takes back what [`OutputBytes::into_raw`] gave out.
    ///
    /// # Safety
    /// `raw` must come from `into_raw` and be taken back at most once.
    pub unsafe fn from_raw(raw: RawOutput) -> OutputBytes {
        if raw.len == 0 || raw.ptr.is_null() {
            return OutputBytes::from_vec(Vec::new());
        }
        let foreign = NonNull::new(raw.owner as *mut AllocatorState);
        OutputBytes { ptr: raw.ptr, len: raw.len, foreign }
    }
}

impl Drop for OutputBytes {
    fn drop(&mut self) {
        match self.foreign {
            // SAFETY: the state outlives every output (it counts them); the
            // buffer came from its allocator and is released once, before
            // the count lets the code behind `free` go.
            Some(state) => unsafe {
                (state.as_ref().free)(self.ptr, self.len);
                if state.as_ref().outstanding.release() {
                    drop(Box::from_raw(state.as_ptr()));
                }
            },
            // SAFETY: ptr/len came from `Box::<[u8]>::into_raw`.
            None => unsafe {
                drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.ptr, self.len)))
            },
        }
    }
}

impl std::fmt::Debug for OutputBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputBytes").field("len", &self.len).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static FREED: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn counting_free(ptr: *mut u8, len: usize) {
        drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)));
        FREED.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn fallible_copies_and_growth() {
        assert_eq!(try_copy(b"abc").unwrap(), b"abc");
        let mut buffer = b"ab".to_vec();
        try_grow(&mut buffer, 4).unwrap();
        assert_eq!(buffer, b"ab\0\0");
        let err = try_grow(&mut Vec::new(), usize::MAX).unwrap_err();
        assert_eq!(err.status(), crate::Status::OutputTooLarge);
    }

    #[test]
    fn host_bytes_round_trip_through_raw() {
        let out = OutputBytes::from_vec(vec![1, 2, 3]);
        let raw = out.into_raw();
        assert!(raw.owner.is_null());
        let back = unsafe { OutputBytes::from_raw(raw) };
        assert_eq!(back.as_slice(), &[1, 2, 3]);
    }

    fn plugin_buffer(len: usize) -> *mut u8 {
        Box::into_raw(vec![9u8; len].into_boxed_slice()) as *mut u8
    }

    #[test]
    fn foreign_bytes_are_freed_once_and_keep_their_code_loaded() {
        let loaded = Arc::new(());
        let allocator = ForeignAllocator::new(counting_free, loaded.clone());
        let out = unsafe { allocator.output(plugin_buffer(4), 4) };
        let raw = out.into_raw();
        assert!(!raw.owner.is_null());
        let back = unsafe { OutputBytes::from_raw(raw) };
        assert_eq!(back.as_slice(), &[9; 4]);
        // The handle goes first: the output still keeps the code loaded.
        drop(allocator);
        assert_eq!(Arc::strong_count(&loaded), 2);
        let before = FREED.load(Ordering::SeqCst);
        drop(back);
        assert_eq!(FREED.load(Ordering::SeqCst), before + 1);
        assert_eq!(Arc::strong_count(&loaded), 1);
        // No output out: closing the handle lets the code go at once.
        let allocator = ForeignAllocator::new(counting_free, loaded.clone());
        drop(unsafe { allocator.output(plugin_buffer(1), 1) });
        assert_eq!(Arc::strong_count(&loaded), 2);
        drop(allocator);
        assert_eq!(Arc::strong_count(&loaded), 1);
    }

    /// Outputs made on some threads and released on others, the handle
    /// dropped while many are out: every buffer is freed once, and the code
    /// stays loaded exactly until the last one is.
    #[test]
    fn outputs_released_across_threads_keep_the_code_loaded_until_the_last() {
        for round in 0..5 {
            let loaded = Arc::new(());
            let allocator = ForeignAllocator::new(counting_free, loaded.clone());
            let before = FREED.load(Ordering::SeqCst);
            let (sender, receiver) = std::sync::mpsc::channel::<OutputBytes>();
            let receiver = std::sync::Mutex::new(receiver);
            const PER_THREAD: usize = 500;
            std::thread::scope(|scope| {
                for _ in 0..3 {
                    let sender = sender.clone();
                    let allocator = &allocator;
                    scope.spawn(move || {
                        for i in 0..PER_THREAD {
                            let out = unsafe { allocator.output(plugin_buffer(1 + i % 7), 1 + i % 7) };
                            if i % 2 == 0 {
                                sender.send(out).unwrap();
                            }
                        }
                    });
                }
                for _ in 0..2 {
                    let receiver = &receiver;
                    scope.spawn(move || loop {
                        let next = receiver.lock().unwrap().recv_timeout(std::time::Duration::from_millis(100));
                        match next {
                            Ok(out) => drop(out),
                            Err(_) => break,
                        }
                    });
                }
            });
            drop(sender);
            // Some outputs may still be queued: close with them out.
            let queued: Vec<OutputBytes> = receiver.lock().unwrap().try_iter().collect();
            drop(allocator);
            assert_eq!(Arc::strong_count(&loaded), if queued.is_empty() { 1 } else { 2 }, "round {round}");
            drop(queued);
            assert_eq!(Arc::strong_count(&loaded), 1, "round {round}");
            assert_eq!(FREED.load(Ordering::SeqCst) - before, 3 * PER_THREAD, "round {round}");
        }
    }

    #[test]
    fn empty_output_is_null() {
        let raw = OutputBytes::from_vec(Vec::new()).into_raw();
        assert!(raw.ptr.is_null());
        drop(unsafe { OutputBytes::from_raw(raw) });
    }
}
