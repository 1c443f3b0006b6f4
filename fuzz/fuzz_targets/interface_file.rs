#![no_main]
//! Interface files (TOML): what parses must print (`to_toml`) and parse back
//! to an equal interface with the same hash.

use fidius_host::interface::file;
use libfuzzer_sys::{fuzz_target, Corpus};

fuzz_target!(init: fidius_fuzz::init(), |data: &[u8]| -> Corpus {
    let Ok(text) = std::str::from_utf8(data) else { return Corpus::Reject };
    if let Ok(interface) = file::parse(text, "fuzz.toml") {
        fidius_fuzz::assert_round_trip(&interface);
    }
    Corpus::Keep
});
