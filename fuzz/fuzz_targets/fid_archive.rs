#![no_main]
//! `.fid` archives: any bytes, as a bzip2 stream (first byte even) or as
//! the tar stream inside one (odd), give an error or a package whose every
//! path stays inside it, within the limits, never a panic or an allocation
//! above the limit.

use fidius_host::artifact::archive;
use libfuzzer_sys::{fuzz_target, Corpus};
use std::path::Path;

/// Small, so that the size checks are reached.
const MAX_BYTES: u64 = 1 << 20;

fuzz_target!(init: fidius_fuzz::init(), |data: &[u8]| -> Corpus {
    let Some((&mode, stream)) = data.split_first() else { return Corpus::Reject };
    let path = Path::new("fuzz.fid");
    let read = if mode % 2 == 0 {
        archive::read_stream(path, bzip2::read::BzDecoder::new(stream), MAX_BYTES)
    } else {
        archive::read_stream(path, stream, MAX_BYTES)
    };
    if let Ok(archive) = read {
        assert!(archive.files.contains_key("package.toml"));
        let total: usize = archive.files.values().map(Vec::len).sum();
        assert!(total as u64 <= MAX_BYTES);
        for name in archive.files.keys() {
            assert!(!name.is_empty() && !name.starts_with('/'), "{name:?}");
            assert!(name.split('/').all(|part| !part.is_empty() && part != ".." && part != "."), "{name:?}");
        }
    }
    Corpus::Keep
});
