//! The fidius interface hash.
//!
//! FNV-1a 64 over the signature strings of the required methods, sorted by
//! bytes and joined with `\n` — exactly what `#[plugin_interface]` computes.
//! Signature strings use the macro's spelling, e.g. `add:i64,i64->i64` or
//! `reverse:Vec < u8 >->Vec < u8 >!raw`.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `bytes`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(FNV_PRIME))
}

/// The interface hash of the required methods' signature strings.
pub fn interface_hash<S: AsRef<str>>(required_signatures: &[S]) -> u64 {
    let mut sorted: Vec<&str> = required_signatures.iter().map(AsRef::as_ref).collect();
    sorted.sort_unstable();
    fnv1a(sorted.join("\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_macro_constants() {
        assert_eq!(fnv1a(b""), FNV_OFFSET);
        assert_eq!(interface_hash(&["add:i64,i64->i64"]), 0xbe30_b9d0_96b2_c49e);
        assert_eq!(
            interface_hash(&["reverse:Vec < u8 >->Vec < u8 >!raw", "name:->String"]),
            0xdf23_3d1a_5936_eb5c
        );
        assert_eq!(
            interface_hash(&[
                "greet:String->String",
                "pair:(i64, i64)->()",
                "blob:Vec < u8 >->Vec < u8 >!raw",
                "maybe:Option < String >->Result < Vec < u8 > , PluginError >",
            ]),
            0xe12b_1649_403a_317b
        );
    }
}
