//! File-header check: is this a shared library for the running process?
//!
//! Runs before anything is mapped, on a file read by offset (a library's
//! headers and tables, not the whole of it) or on bytes in memory. Unlike
//! the upstream host, short and unknown files are rejected, and the ELF class,
//! byte order and object type are checked along with the machine.

use crate::disk::ReadAt;
use crate::error::{Error, Result, Status};
use std::path::Path;

mod elf;

/// The executable formats a header can announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Elf,
    MachO,
    Pe,
}

impl Format {
    fn native() -> Format {
        if cfg!(target_os = "macos") {
            Format::MachO
        } else if cfg!(windows) {
            Format::Pe
        } else {
            Format::Elf
        }
    }
}

/// ELF `e_machine` of the running process.
fn native_elf_machine() -> u16 {
    if cfg!(target_arch = "x86_64") {
        62
    } else if cfg!(target_arch = "aarch64") {
        183
    } else if cfg!(target_arch = "x86") {
        3
    } else if cfg!(target_arch = "arm") {
        40
    } else if cfg!(target_arch = "riscv64") {
        243
    } else {
        0
    }
}

fn elf_machine_name(machine: u16) -> String {
    match machine {
        3 => "x86".into(),
        40 => "arm".into(),
        62 => "x86_64".into(),
        183 => "aarch64".into(),
        243 => "riscv".into(),
        other => format!("machine {other}"),
    }
}

/// The smallest file that can hold an ELF64 header.
const MIN_LEN: usize = 64;

/// How many bytes of a file [`check_head`] needs.
pub const HEAD_LEN: usize = MIN_LEN;

/// Checks that `file` is a shared library this process can load, with
/// every structure the system loader reads inside the file.
pub fn check<F: ReadAt + ?Sized>(path: &Path, file: &F) -> Result<()> {
    let mut head = [0u8; HEAD_LEN];
    let head = &mut head[..file.size().min(HEAD_LEN as u64) as usize];
    if !file.read_at(0, head) {
        return Err(Error::at(Status::NotALibrary, path, "the file header cannot be read"));
    }
    check_head(path, head)?;
    match detect(head) {
        Some(Format::Elf) => elf::check_structure(path, file),
        _ => Ok(()),
    }
}

/// Checks the file header alone (the first [`HEAD_LEN`] bytes of a file, or
/// more): is this a shared library for this process? Run before the rest of
/// a file is read.
pub fn check_head(path: &Path, bytes: &[u8]) -> Result<()> {
    if bytes.len() < MIN_LEN {
        return Err(Error::at(
            Status::NotALibrary,
            path,
            format!("too short to be a shared library ({} bytes, expected at least {MIN_LEN})", bytes.len()),
        ));
    }
    let format = detect(bytes).ok_or_else(|| {
        Error::at(
            Status::NotALibrary,
            path,
            format!("not a shared library: unknown file header {:02x?}", &bytes[..4]),
        )
    })?;
    if format != Format::native() {
        return Err(Error::at(
            Status::ArchitectureMismatch,
            path,
            format!("expected a {:?} library, found a {format:?} file", Format::native()),
        ));
    }
    match format {
        Format::Elf => check_elf_ident(path, bytes),
        // Only reachable on the platforms whose native format these are.
        Format::MachO | Format::Pe => Ok(()),
    }
}

fn detect(bytes: &[u8]) -> Option<Format> {
    let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
    match magic {
        [0x7f, b'E', b'L', b'F'] => Some(Format::Elf),
        [0xfe, 0xed, 0xfa, 0xce] | [0xfe, 0xed, 0xfa, 0xcf] | [0xce, 0xfa, 0xed, 0xfe]
        | [0xcf, 0xfa, 0xed, 0xfe] | [0xca, 0xfe, 0xba, 0xbe] => Some(Format::MachO),
        [b'M', b'Z', _, _] => Some(Format::Pe),
        _ => None,
    }
}

fn check_elf_ident(path: &Path, bytes: &[u8]) -> Result<()> {
    let mismatch = |what: &str, expected: String, found: String| {
        Err(Error::at(
            Status::ArchitectureMismatch,
            path,
            format!("ELF {what} mismatch: expected {expected}, found {found}"),
        ))
    };
    let class = bytes[4];
    let native_class = if cfg!(target_pointer_width = "64") { 2 } else { 1 };
    if class != native_class {
        let name = |c: u8| match c {
            1 => "32-bit".to_string(),
            2 => "64-bit".to_string(),
            other => format!("class {other}"),
        };
        return mismatch("class", name(native_class), name(class));
    }
    let data = bytes[5];
    let native_data = if cfg!(target_endian = "little") { 1 } else { 2 };
    if data != native_data {
        let name = |d: u8| match d {
            1 => "little-endian".to_string(),
            2 => "big-endian".to_string(),
            other => format!("byte order {other}"),
        };
        return mismatch("byte order", name(native_data), name(data));
    }
    let read_u16 = |offset: usize| {
        let pair = [bytes[offset], bytes[offset + 1]];
        if native_data == 1 { u16::from_le_bytes(pair) } else { u16::from_be_bytes(pair) }
    };
    let object_type = read_u16(16);
    const ET_DYN: u16 = 3;
    if object_type != ET_DYN {
        return Err(Error::at(
            Status::NotALibrary,
            path,
            format!("ELF object type {object_type} is not a shared object (expected {ET_DYN})"),
        ));
    }
    let machine = read_u16(18);
    if machine != native_elf_machine() {
        return mismatch(
            "machine",
            elf_machine_name(native_elf_machine()),
            elf_machine_name(machine),
        );
    }
    Ok(())
}

#[cfg(all(test, target_os = "linux", target_arch = "x86_64"))]
mod tests {
    use super::*;

    fn elf(class: u8, data: u8, object_type: u16, machine: u16) -> Vec<u8> {
        let mut bytes = vec![0u8; 64];
        bytes[..4].copy_from_slice(b"\x7fELF");
        bytes[4] = class;
        bytes[5] = data;
        bytes[16..18].copy_from_slice(&object_type.to_le_bytes());
        bytes[18..20].copy_from_slice(&machine.to_le_bytes());
        bytes
    }

    fn status(bytes: &[u8]) -> Option<Status> {
        check_head(Path::new("x.so"), bytes).err().map(|e| e.status())
    }

    #[test]
    fn accepts_native_shared_object() {
        assert_eq!(status(&elf(2, 1, 3, 62)), None);
        // A header alone is not a library the loader can map.
        let err = check(Path::new("x.so"), &elf(2, 1, 3, 62)[..]).unwrap_err();
        assert_eq!(err.status(), Status::NotALibrary);
        assert!(err.message().contains("program headers"), "{}", err.message());
    }

    #[test]
    fn rejects_foreign_or_malformed_headers() {
        assert_eq!(status(&elf(1, 1, 3, 62)), Some(Status::ArchitectureMismatch));
        assert_eq!(status(&elf(2, 2, 3, 62)), Some(Status::ArchitectureMismatch));
        assert_eq!(status(&elf(2, 1, 3, 183)), Some(Status::ArchitectureMismatch));
        assert_eq!(status(&elf(2, 1, 2, 62)), Some(Status::NotALibrary));
        assert_eq!(status(&elf(2, 1, 3, 62)[..20]), Some(Status::NotALibrary));
        assert_eq!(status(&[0u8; 100]), Some(Status::NotALibrary));
        let mut macho = vec![0u8; 64];
        macho[..4].copy_from_slice(&[0xcf, 0xfa, 0xed, 0xfe]);
        assert_eq!(status(&macho), Some(Status::ArchitectureMismatch));
    }

    #[test]
    fn messages_name_expected_and_found() {
        let err = check(Path::new("lib/arm.so"), &elf(2, 1, 3, 183)[..]).unwrap_err();
        assert!(err.message().contains("lib/arm.so"), "{}", err.message());
        assert!(err.message().contains("expected x86_64, found aarch64"), "{}", err.message());
    }
}
