#![no_main]
//! Package manifests (`package.toml`): any text is an error or a manifest
//! whose runtime is known.

use fidius_host::artifact::package::Manifest;
use libfuzzer_sys::{fuzz_target, Corpus};
use std::path::Path;

fuzz_target!(init: fidius_fuzz::init(), |data: &[u8]| -> Corpus {
    let Ok(text) = std::str::from_utf8(data) else { return Corpus::Reject };
    if let Ok(manifest) = Manifest::parse(Path::new("fuzz-package"), text) {
        let runtime = manifest.runtime();
        assert!(runtime.is_ok(), "parse accepted a manifest whose runtime is {runtime:?}");
        let _ = format!("{manifest:?}");
    }
    Corpus::Keep
});
