//! Signed loading: keys and signatures made by the real fidius CLI.

mod common;

use common::*;
use fidius_host::{HostBuilder, Status, TrustedKey};

#[test]
fn a_library_signed_by_fidius_sign_loads_from_a_sealed_copy() {
    let host = signed_host_for(&fixture("signed"));
    let plugin = host.load("BasicCalculator").unwrap();
    let out = plugin.call_raw(calc::ADD, &encode(&(20i64, 22i64))).unwrap();
    assert_eq!(decode::<i64>(out.as_slice()), 42);
    // What is mapped is the verified in-memory copy, never the file itself.
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    assert!(maps.contains("/memfd:fidius-host:libcalc_plugin.so"), "{maps}");
    let signed_path = std::fs::canonicalize(fixture("signed/libcalc_plugin.so")).unwrap();
    assert!(!maps.contains(&*signed_path.to_string_lossy()), "the signed file itself must not be mapped");
}

#[test]
fn unsigned_tampered_and_wrong_key_libraries_are_refused() {
    let dir = temp_dir("sig-refused");
    let unsigned = copy_into(&dir, &fixture("plugins/libcalc_plugin.so"));
    let host = signed_host_for(&dir);
    let err = host.load_path(&unsigned, Some("BasicCalculator")).unwrap_err();
    assert_eq!(err.status(), Status::SignatureRequired);
    assert!(err.message().contains("libcalc_plugin.so.sig does not exist"), "{err}");

    // Tampered: one byte of the signed file changed.
    let mut bytes = std::fs::read(fixture("signed/libcalc_plugin.so")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&unsigned, &bytes).unwrap();
    std::fs::copy(fixture("signed/libcalc_plugin.so.sig"), dir.join("libcalc_plugin.so.sig")).unwrap();
    let err = host.load_path(&unsigned, Some("BasicCalculator")).unwrap_err();
    assert_eq!(err.status(), Status::SignatureInvalid);

    // A signature of the wrong length.
    std::fs::copy(fixture("signed/libcalc_plugin.so"), &unsigned).unwrap();
    std::fs::write(dir.join("libcalc_plugin.so.sig"), [0u8; 63]).unwrap();
    let err = host.load_path(&unsigned, Some("BasicCalculator")).unwrap_err();
    assert_eq!(err.status(), Status::SignatureInvalid);
    assert!(err.message().contains("must be 64 bytes, found 63"), "{err}");

    // Signed, but by a key the host does not trust.
    let other = TrustedKey::from_file(&fixture("keys/untrusted.public")).unwrap();
    let strangers = HostBuilder::new().require_signature(true).trusted_key(other).build().unwrap();
    let err = strangers.load_path(&fixture("signed/libcalc_plugin.so"), Some("BasicCalculator")).unwrap_err();
    assert_eq!(err.status(), Status::SignatureInvalid);
    assert!(err.message().contains("1 trusted key"), "{err}");
}

#[test]
fn any_of_several_trusted_keys_verifies() {
    let trusted = TrustedKey::from_file(&fixture("keys/trusted.public")).unwrap();
    let other = TrustedKey::from_file(&fixture("keys/untrusted.public")).unwrap();
    let host = HostBuilder::new()
        .search_path(fixture("signed"))
        .require_signature(true)
        .trusted_key(other)
        .trusted_key(trusted)
        .build()
        .unwrap();
    assert!(host.load("PartialCalculator").is_ok());
    // libmarker.so is signed by the untrusted key, which is trusted here too.
    assert_eq!(host.discover().plugins.len(), 3);
}

#[test]
fn lenient_policy_never_relaxes_signatures() {
    let dir = temp_dir("sig-lenient");
    copy_into(&dir, &fixture("plugins/libcalc_plugin.so"));
    let key = TrustedKey::from_file(&fixture("keys/trusted.public")).unwrap();
    let host = HostBuilder::new()
        .search_path(&dir)
        .require_signature(true)
        .trusted_key(key)
        .load_policy(fidius_host::LoadPolicy::Lenient)
        .build()
        .unwrap();
    // The only library holding the name was refused: the refusal is the status.
    let err = host.load("BasicCalculator").unwrap_err();
    assert_eq!(err.status(), Status::SignatureRequired);
    assert!(err.message().contains("libcalc_plugin.so.sig does not exist"), "{err}");
    let err = host.load("Nobody").unwrap_err();
    assert_eq!(err.status(), Status::PluginNotFound, "{err}");
}

#[test]
fn an_unsigned_neighbour_does_not_block_signed_plugins() {
    let dir = temp_dir("sig-neighbour");
    copy_into(&dir, &fixture("crafted/libcrafted.so"));
    copy_into(&dir, &fixture("signed/libcalc_plugin.so"));
    copy_into(&dir, &fixture("signed/libcalc_plugin.so.sig"));
    let host = signed_host_for(&dir);
    assert!(host.load("BasicCalculator").is_ok());
    let found = host.discover();
    assert_eq!(found.plugins.len(), 2);
    assert_eq!(found.skipped.len(), 1);
    assert_eq!(found.skipped[0].error.status(), Status::SignatureRequired);
}

#[test]
fn replacing_the_file_after_verification_changes_nothing_that_runs() {
    let dir = temp_dir("sig-swap");
    let file = copy_into(&dir, &fixture("signed/libcalc_plugin.so"));
    copy_into(&dir, &fixture("signed/libcalc_plugin.so.sig"));
    let host = signed_host_for(&dir);
    let plugin = host.load("BasicCalculator").unwrap();
    // Swap in another (unsigned) library under the same name.
    std::fs::remove_file(&file).unwrap();
    std::fs::copy(fixture("crafted/libcrafted.so"), &file).unwrap();
    let out = plugin.call_raw(calc::GREET, &encode(&("still".to_string(),))).unwrap();
    assert_eq!(decode::<String>(out.as_slice()), "Hello, still!");
    // A new load sees the new file, and refuses it.
    let err = host.load_path(&file, Some("BasicCalculator")).unwrap_err();
    assert_eq!(err.status(), Status::SignatureInvalid);
}

#[test]
fn a_library_loaded_again_is_checked_again() {
    let dir = temp_dir("sig-again");
    let file = copy_into(&dir, &fixture("signed/libcalc_plugin.so"));
    let sig = copy_into(&dir, &fixture("signed/libcalc_plugin.so.sig"));
    let host = signed_host_for(&dir);
    let add = |plugin: &fidius_host::Plugin| decode::<i64>(plugin.call_raw(calc::ADD, &encode(&(2i64, 3i64))).unwrap().as_slice());
    for _ in 0..3 {
        // Each handle is the last one, so each load maps the library anew.
        assert_eq!(add(&host.load_path(&file, Some("BasicCalculator")).unwrap()), 5);
    }
    let original = std::fs::read(&file).unwrap();
    let overwrite = |bytes: &[u8]| {
        // In place: the same file (inode), the same size.
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        f.write_all(bytes).unwrap();
    };
    let mut changed = original.clone();
    let last = changed.len() - 1;
    changed[last] ^= 0xff;
    overwrite(&changed);
    let err = host.load_path(&file, Some("BasicCalculator")).unwrap_err();
    assert_eq!(err.status(), Status::SignatureInvalid, "{err}");
    overwrite(&original);
    assert_eq!(add(&host.load_path(&file, Some("BasicCalculator")).unwrap()), 5);

    // The signature is read at every load, too.
    let signature = std::fs::read(&sig).unwrap();
    std::fs::remove_file(&sig).unwrap();
    let err = host.load_path(&file, Some("BasicCalculator")).unwrap_err();
    assert_eq!(err.status(), Status::SignatureRequired, "{err}");
    let mut forged = signature.clone();
    forged[0] ^= 1;
    std::fs::write(&sig, &forged).unwrap();
    let err = host.load_path(&file, Some("BasicCalculator")).unwrap_err();
    assert_eq!(err.status(), Status::SignatureInvalid, "{err}");
    std::fs::write(&sig, &signature).unwrap();
    assert_eq!(add(&host.load_path(&file, Some("BasicCalculator")).unwrap()), 5);
}
