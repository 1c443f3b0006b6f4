#![no_main]
//! The checks run on a library's bytes before the system loader maps them:
//! any bytes give Ok or an error, never a panic (an index out of bounds
//! included) or an allocation above the limit.

use fidius_host::artifact::header;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(init: fidius_fuzz::init(), |data: &[u8]| {
    let _ = header::check(Path::new("fuzz.so"), data);
});
