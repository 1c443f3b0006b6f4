//! `.fid` archives: packages packed by the real fidius CLI, unpacked and
//! verified, and hostile archives refused before anything is written.
#![cfg(feature = "wasm")]

mod common;

use common::*;
use fidius_host::interface::file;
use fidius_host::{HostBuilder, LoadOptions, Status, TrustedKey};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn calculator() -> LoadOptions {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-c/interfaces/calculator.toml");
    LoadOptions::with_interface(Arc::new(file::read(&path).unwrap()))
}

fn trusted() -> TrustedKey {
    TrustedKey::from_file(&fixture("keys/trusted.public")).unwrap()
}

/// A `.fid` archive (tar + bzip2) written with `build`, at `dir/name`.
fn archive(dir: &Path, name: &str, build: impl FnOnce(&mut tar::Builder<bzip2::write::BzEncoder<std::fs::File>>)) -> PathBuf {
    let path = dir.join(name);
    let encoder = bzip2::write::BzEncoder::new(std::fs::File::create(&path).unwrap(), bzip2::Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    build(&mut builder);
    builder.into_inner().unwrap().finish().unwrap();
    path
}

fn add_file(builder: &mut tar::Builder<impl std::io::Write>, path: &str, contents: &[u8]) {
    let mut header = tar::Header::new_gnu();
    header.set_size(contents.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, path, contents).unwrap();
}

/// An entry with a raw name, written without the tar crate's path checks
/// (which refuse `..` and absolute paths when writing).
fn add_raw(builder: &mut tar::Builder<impl std::io::Write>, name: &str, kind: tar::EntryType, contents: &[u8]) {
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_size(contents.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(kind);
    if kind == tar::EntryType::Symlink || kind == tar::EntryType::Link {
        header.set_link_name("/etc/passwd").unwrap();
    }
    header.set_cksum();
    builder.append(&header, contents).unwrap();
}

#[test]
fn a_cli_packed_archive_unpacks_verifies_and_loads() {
    let dest = temp_dir("fid-unpack");
    let plain = HostBuilder::new().build().unwrap();
    let dir = plain.unpack_archive(&fixture("archives/calc.fid"), &dest).unwrap();
    assert_eq!(dir, dest.join("WasmCalculator-0.1.0"));
    let plugin = plain.load_path_with(&dir, None, &calculator()).unwrap();
    assert_eq!(plugin.call_json("add", "[2, 40]").unwrap(), "42");
    // Unpacking over an existing package is refused and changes nothing.
    let e = plain.unpack_archive(&fixture("archives/calc.fid"), &dest).unwrap_err();
    assert_eq!(e.status(), Status::InvalidArgument, "{e}");
    assert!(e.message().contains("already exists"), "{e}");

    // A host that requires signatures unpacks only a signed archive, and
    // checks the signature on the files it read.
    let strict = HostBuilder::new().require_signature(true).trusted_key(trusted()).build().unwrap();
    let dest = temp_dir("fid-unpack-signed");
    let e = strict.unpack_archive(&fixture("archives/calc.fid"), &dest).unwrap_err();
    assert_eq!(e.status(), Status::SignatureRequired, "{e}");
    assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 0, "nothing was written");
    let dir = strict.unpack_archive(&fixture("archives/calc-signed.fid"), &dest).unwrap();
    let plugin = strict.load_path_with(&dir, None, &calculator()).unwrap();
    assert_eq!(plugin.call_json("add", "[1, 1]").unwrap(), "2");
    strict.verify(&fixture("archives/calc-signed.fid")).unwrap();
    assert_eq!(strict.verify(&fixture("archives/calc.fid")).unwrap_err().status(), Status::SignatureRequired);
}

#[test]
fn a_tampered_signed_archive_is_refused_before_anything_is_written() {
    let dir = temp_dir("fid-tampered");
    let signed = fidius_host::artifact::archive::read(&fixture("archives/calc-signed.fid"), u64::MAX).unwrap();
    let tampered = archive(&dir, "tampered.fid", |b| {
        for (path, contents) in &signed.files {
            let mut contents = contents.clone();
            if path == "package.toml" {
                contents.extend_from_slice(b"\n# changed\n");
            }
            add_file(b, &format!("{}/{path}", signed.top), &contents);
        }
    });
    let strict = HostBuilder::new().require_signature(true).trusted_key(trusted()).build().unwrap();
    let dest = dir.join("dest");
    let e = strict.unpack_archive(&tampered, &dest).unwrap_err();
    assert_eq!(e.status(), Status::SignatureInvalid, "{e}");
    assert!(!dest.exists(), "nothing was written, not even the destination");
}

#[test]
fn hostile_archives_are_refused_with_a_reason_and_leave_nothing() {
    let dir = temp_dir("fid-hostile");
    let host = HostBuilder::new().max_package_size(1 << 20).unwrap().build().unwrap();
    let manifest = std::fs::read(fixture("wasm/calc/package.toml")).unwrap();
    let cases: Vec<(&str, Status, &str, PathBuf)> = vec![
        ("traversal", Status::InvalidManifest, "'..' component", archive(&dir, "traversal.fid", |b| {
            add_file(b, "p-1/package.toml", &manifest);
            add_raw(b, "p-1/../../escaped.txt", tar::EntryType::Regular, b"x");
        })),
        ("absolute", Status::InvalidManifest, "absolute path", archive(&dir, "absolute.fid", |b| {
            add_raw(b, "/tmp/fid-absolute.txt", tar::EntryType::Regular, b"x");
        })),
        ("symlink", Status::InvalidManifest, "symbolic link", archive(&dir, "symlink.fid", |b| {
            add_file(b, "p-1/package.toml", &manifest);
            add_raw(b, "p-1/link", tar::EntryType::Symlink, b"");
        })),
        ("hardlink", Status::InvalidManifest, "hard link", archive(&dir, "hardlink.fid", |b| {
            add_file(b, "p-1/package.toml", &manifest);
            add_raw(b, "p-1/link", tar::EntryType::Link, b"");
        })),
        ("fifo", Status::InvalidManifest, "FIFO", archive(&dir, "fifo.fid", |b| {
            add_file(b, "p-1/package.toml", &manifest);
            add_raw(b, "p-1/pipe", tar::EntryType::Fifo, b"");
        })),
        ("two tops", Status::InvalidManifest, "outside the top-level directory", archive(&dir, "tops.fid", |b| {
            add_file(b, "p-1/package.toml", &manifest);
            add_file(b, "q-1/package.toml", &manifest);
        })),
        ("twice", Status::InvalidManifest, "packed twice", archive(&dir, "twice.fid", |b| {
            add_file(b, "p-1/package.toml", &manifest);
            add_file(b, "p-1/package.toml", b"[package]");
        })),
        ("no manifest", Status::InvalidManifest, "holds no package.toml", archive(&dir, "empty.fid", |b| {
            add_file(b, "p-1/readme", b"hi");
        })),
        // 2 MiB of zeros compress to almost nothing: more than the limit
        // once decompressed.
        ("bomb", Status::FileTooLarge, "more than the limit", archive(&dir, "bomb.fid", |b| {
            add_file(b, "p-1/package.toml", &manifest);
            add_file(b, "p-1/zeros", &vec![0u8; 2 << 20]);
        })),
        ("many entries", Status::InvalidManifest, "more than", archive(&dir, "many.fid", |b| {
            add_file(b, "p-1/package.toml", &manifest);
            for i in 0..20_001 {
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                header.set_mode(0o755);
                b.append_data(&mut header, format!("p-1/d{i}"), std::io::empty()).unwrap();
            }
        })),
    ];
    for (what, status, text, path) in cases {
        let dest = dir.join(format!("dest-{}", what.replace(' ', "-")));
        let e = host.unpack_archive(&path, &dest).unwrap_err();
        assert_eq!(e.status(), status, "{what}: {e}");
        assert!(e.message().contains(text), "{what}: {e}");
        assert!(!dest.exists() || std::fs::read_dir(&dest).unwrap().count() == 0, "{what}: something was written");
    }
    assert!(!dir.join("escaped.txt").exists() && !Path::new("/tmp/fid-absolute.txt").exists());

    // Not an archive at all, and an archive over the compressed limit.
    std::fs::write(dir.join("junk.fid"), b"not bzip2").unwrap();
    let e = host.unpack_archive(&dir.join("junk.fid"), &dir.join("dest-junk")).unwrap_err();
    assert_eq!(e.status(), Status::InvalidManifest, "{e}");
    let tiny = HostBuilder::new().max_package_size(1000).unwrap().build().unwrap();
    let e = tiny.unpack_archive(&fixture("archives/calc.fid"), &dir.join("dest-tiny")).unwrap_err();
    assert_eq!(e.status(), Status::FileTooLarge, "{e}");
}

#[test]
fn archives_load_by_path_and_by_name_and_are_discovered() {
    let plain = HostBuilder::new().search_path(fixture("archives")).build().unwrap();
    let plugin = plain.load_path_with(&fixture("archives/calc.fid"), None, &calculator()).unwrap();
    assert_eq!(plugin.call_json("add", "[20, 22]").unwrap(), "42");
    assert!(plugin.info().path.ends_with("calc.fid/WasmCalculator-0.1.0"), "{:?}", plugin.info().path);
    let by_name = plain.load_with("WasmCalculator", &calculator()).unwrap();
    assert_eq!(by_name.call_json("multiply", "[6, 7]").unwrap(), "42");
    let found = plain.discover();
    let archives: Vec<_> = found.plugins.iter().filter(|p| p.name == "WasmCalculator").map(|p| p.path.clone()).collect();
    assert_eq!(archives, [fixture("archives/calc-signed.fid"), fixture("archives/calc.fid")], "{found:?}");
    assert!(found.skipped.is_empty(), "{:?}", found.skipped);

    // With signatures required, the signed archive loads (from the files
    // read and verified) and the unsigned one does not.
    let strict = HostBuilder::new().require_signature(true).trusted_key(trusted()).build().unwrap();
    let e = strict.load_path_with(&fixture("archives/calc.fid"), None, &calculator()).unwrap_err();
    assert_eq!(e.status(), Status::SignatureRequired, "{e}");
    let signed = strict.load_path_with(&fixture("archives/calc-signed.fid"), None, &calculator()).unwrap();
    assert_eq!(signed.call_json("add", "[1, 2]").unwrap(), "3");

    // A hostile archive in a search path is skipped with its reason.
    let dir = temp_dir("fid-discovery");
    std::fs::copy(fixture("archives/calc.fid"), dir.join("calc.fid")).unwrap();
    std::fs::write(dir.join("broken.fid"), b"not an archive").unwrap();
    let found = HostBuilder::new().search_path(&dir).build().unwrap().discover();
    assert_eq!(found.plugins.len(), 1);
    assert_eq!(found.skipped.len(), 1);
    assert_eq!(found.skipped[0].error.status(), Status::InvalidManifest);
}

#[cfg(feature = "python")]
#[test]
fn a_python_package_loads_from_its_archive_with_its_vendored_modules() {
    let plain = HostBuilder::new().build().unwrap();
    let plugin = plain.load_path_with(&fixture("archives/py-calc.fid"), None, &calculator()).unwrap();
    // `greet` uses the vendored `greeting` package: nested paths of the archive.
    assert_eq!(plugin.call_json("greet", r#"["fid"]"#).unwrap(), r#""Hello, fid!""#);
    let strict = HostBuilder::new().require_signature(true).trusted_key(trusted()).build().unwrap();
    let signed = strict.load_path_with(&fixture("archives/py-calc-signed.fid"), None, &calculator()).unwrap();
    assert_eq!(signed.call_json("add", "[2, 3]").unwrap(), "5");
    let e = strict.load_path_with(&fixture("archives/py-calc.fid"), None, &calculator()).unwrap_err();
    assert_eq!(e.status(), Status::SignatureRequired, "{e}");
}
