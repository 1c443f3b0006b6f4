//! One arena per thread for Arena-strategy plugins.
//!
//! The arena starts at 4 KiB (as in the upstream host) and grows only to what
//! a plugin asks for within the host's output limit. An arena that grew past
//! [`KEEP_LIMIT`] is released after the call, so one large result does not
//! pin memory on a thread forever.

use std::cell::RefCell;

/// First arena size.
pub const INITIAL_SIZE: usize = 4096;
/// Largest arena kept between calls.
pub const KEEP_LIMIT: usize = 1 << 20;

thread_local! {
    static ARENA: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's arena (a fresh one if it is already in use,
/// e.g. by a plugin that calls back into the host).
pub fn with_arena<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    ARENA.with(|cell| match cell.try_borrow_mut() {
        Ok(mut arena) => {
            if arena.len() < INITIAL_SIZE {
                arena.resize(INITIAL_SIZE, 0);
            }
            let result = f(&mut arena);
            if arena.len() > KEEP_LIMIT {
                *arena = Vec::new();
            }
            result
        }
        Err(_) => f(&mut vec![0; INITIAL_SIZE]),
    })
}
