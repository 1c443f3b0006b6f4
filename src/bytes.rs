//! Output bytes handed out by the host: the one way results leave a plugin.
//!
//! A result is either bytes the host allocated, or a buffer a cdylib plugin
//! allocated, handed out without a copy and given back to the plugin's own
//! `free_buffer` when released. A plugin buffer keeps its library mapped, so
//! output may outlive the plugin handle that produced it.

use std::any::Any;
use std::sync::Arc;

/// How to release buffers that foreign code allocated.
pub struct ForeignAllocator {
    free: unsafe extern "C" fn(*mut u8, usize),
    _keep_alive: Arc<dyn Any + Send + Sync>,
}

impl ForeignAllocator {
    /// `free` releases a buffer; `keep_alive` keeps the code behind `free`
    /// loaded for as long as any buffer is outstanding.
    pub fn new(
        free: unsafe extern "C" fn(*mut u8, usize),
        keep_alive: Arc<dyn Any + Send + Sync>,
    ) -> ForeignAllocator {
        ForeignAllocator { free, _keep_alive: keep_alive }
    }
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
    foreign: Option<Arc<ForeignAllocator>>,
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

    /// A buffer `allocator` must release.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes that stay valid until they are
    /// given to `allocator`'s free function, which must accept them.
    pub unsafe fn foreign(ptr: *mut u8, len: usize, allocator: &Arc<ForeignAllocator>) -> OutputBytes {
        OutputBytes { ptr, len, foreign: Some(Arc::clone(allocator)) }
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
        let owner = match &this.foreign {
            // SAFETY: the Arc is moved out exactly once; `this` is never dropped.
            Some(_) => Arc::into_raw(unsafe { std::ptr::read(&this.foreign) }.unwrap()) as *const (),
            None => std::ptr::null(),
        };
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
        let foreign = if raw.owner.is_null() {
            None
        } else {
            Some(Arc::from_raw(raw.owner as *const ForeignAllocator))
        };
        OutputBytes { ptr: raw.ptr, len: raw.len, foreign }
    }
}

impl Drop for OutputBytes {
    fn drop(&mut self) {
        match &self.foreign {
            // SAFETY: the buffer came from this allocator and is released once.
            Some(allocator) => unsafe { (allocator.free)(self.ptr, self.len) },
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

    #[test]
    fn foreign_bytes_are_freed_once_by_their_allocator() {
        let allocator = Arc::new(ForeignAllocator::new(counting_free, Arc::new(())));
        let buf = Box::into_raw(vec![9u8; 4].into_boxed_slice()) as *mut u8;
        let out = unsafe { OutputBytes::foreign(buf, 4, &allocator) };
        let raw = out.into_raw();
        assert_eq!(Arc::strong_count(&allocator), 2);
        let back = unsafe { OutputBytes::from_raw(raw) };
        assert_eq!(back.as_slice(), &[9; 4]);
        let before = FREED.load(Ordering::SeqCst);
        drop(back);
        assert_eq!(FREED.load(Ordering::SeqCst), before + 1);
        assert_eq!(Arc::strong_count(&allocator), 1);
    }

    #[test]
    fn empty_output_is_null() {
        let raw = OutputBytes::from_vec(Vec::new()).into_raw();
        assert!(raw.ptr.is_null());
        drop(unsafe { OutputBytes::from_raw(raw) });
    }
}
