//! Ed25519 signatures in the format the fidius CLI writes.
//!
//! `fidius keygen` writes raw 32-byte public keys; `fidius sign FILE` writes
//! `FILE.sig`, the raw 64-byte Ed25519 signature over the whole file.

use crate::disk::{self, Limit, Links, KEY_LIMIT, SIGNATURE_LIMIT};
use crate::error::{Error, Result, Status};
use ed25519_dalek::{Signature, VerifyingKey};
use std::path::{Path, PathBuf};

/// A public key the host trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedKey(VerifyingKey);

impl TrustedKey {
    /// A key from its raw 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<TrustedKey> {
        let raw: [u8; 32] = bytes.try_into().map_err(|_| {
            Error::new(
                Status::InvalidKey,
                format!("an Ed25519 public key is 32 bytes, found {}", bytes.len()),
            )
        })?;
        VerifyingKey::from_bytes(&raw)
            .map(TrustedKey)
            .map_err(|e| Error::new(Status::InvalidKey, format!("not an Ed25519 public key: {e}")))
    }

    /// The key's raw 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// A key from a `NAME.public` file written by `fidius keygen`.
    pub fn from_file(path: &Path) -> Result<TrustedKey> {
        let limit = Limit::new(KEY_LIMIT, "key file");
        let bytes = disk::read(path, Links::Follow, limit).map_err(|e| match e.status() {
            Status::FileTooLarge => Error::at(Status::InvalidKey, path, "an Ed25519 public key is 32 bytes, the file holds more"),
            _ => e,
        })?;
        TrustedKey::from_bytes(&bytes).map_err(|e| e.context(path.display()))
    }
}

/// Where `fidius sign` puts the signature of `file`: its full name plus `.sig`.
pub fn detached_signature_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// Verifies `message` (the bytes of `file`, already in memory) against the
/// detached signature next to `file`.
pub fn verify_detached(file: &Path, message: &[u8], keys: &[TrustedKey]) -> Result<()> {
    verify_file(&detached_signature_path(file), file, message, keys)
}

/// Verifies `message` against the raw signature in `sig_path`; errors name
/// `subject`, the thing signed.
pub fn verify_file(sig_path: &Path, subject: &Path, message: &[u8], keys: &[TrustedKey]) -> Result<()> {
    check(subject, message, &read_signature(sig_path, subject)?, keys)
}

/// The raw signature in `sig_path`; errors name `subject`, the thing signed.
pub fn read_signature(sig_path: &Path, subject: &Path) -> Result<Vec<u8>> {
    disk::read(sig_path, Links::Follow, Limit::new(SIGNATURE_LIMIT, "signature file")).map_err(|e| match e.status() {
        Status::FileNotFound => Error::at(
            Status::SignatureRequired,
            subject,
            format!("signatures are required and {} does not exist", sig_path.display()),
        ),
        Status::FileTooLarge => Error::at(
            Status::SignatureInvalid,
            subject,
            format!("{}: a signature is 64 bytes, the file holds more", sig_path.display()),
        ),
        _ => e.context(format_args!("{}: cannot read its signature", subject.display())),
    })
}

/// Checks `signature` of `message` (the bytes of `subject`) against `keys`.
pub fn check(subject: &Path, message: &[u8], signature: &[u8], keys: &[TrustedKey]) -> Result<()> {
    verify(message, signature, keys).map_err(|reason| Error::at(Status::SignatureInvalid, subject, reason))
}

/// Checks a raw 64-byte signature against every trusted key.
fn verify(message: &[u8], signature: &[u8], keys: &[TrustedKey]) -> std::result::Result<(), String> {
    let raw: [u8; 64] = signature
        .try_into()
        .map_err(|_| format!("signature must be 64 bytes, found {}", signature.len()))?;
    let signature = Signature::from_bytes(&raw);
    if keys.iter().any(|key| key.0.verify_strict(message, &signature).is_ok()) {
        Ok(())
    } else {
        Err(format!(
            "signature does not verify with any of the {} trusted key(s) (tampered file or untrusted signer)",
            keys.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn sig_path_appends_to_full_name() {
        assert_eq!(detached_signature_path(Path::new("a/libx.so")), Path::new("a/libx.so.sig"));
        assert_eq!(detached_signature_path(Path::new("plugin")), Path::new("plugin.sig"));
    }

    #[test]
    fn verifies_with_any_trusted_key() {
        let signer = SigningKey::from_bytes(&[7u8; 32]);
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let sig = signer.sign(b"bytes").to_bytes();
        let good = TrustedKey::from_bytes(signer.verifying_key().as_bytes()).unwrap();
        let bad = TrustedKey::from_bytes(other.verifying_key().as_bytes()).unwrap();
        assert!(verify(b"bytes", &sig, &[bad, good]).is_ok());
        assert!(verify(b"bytes", &sig, &[bad]).is_err());
        assert!(verify(b"bytez", &sig, &[good]).is_err());
        assert!(verify(b"bytes", &sig[..63], &[good]).unwrap_err().contains("64 bytes"));
    }

    #[test]
    fn rejects_bad_key_lengths() {
        assert_eq!(TrustedKey::from_bytes(&[1u8; 31]).unwrap_err().status(), Status::InvalidKey);
    }
}
