//! The one SHA-256 helper of groundwork's tooling: migration checksums, code
//! generation fingerprints, test template names and derived names.

use sha2::{Digest, Sha256};

/// SHA-256 of `parts` joined by a zero byte: one part hashes as itself.
pub fn sha256<I, P>(parts: I) -> [u8; 32]
where
    I: IntoIterator<Item = P>,
    P: AsRef<[u8]>,
{
    let mut hasher = Sha256::new();
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            hasher.update([0]);
        }
        hasher.update(part.as_ref());
    }
    hasher.finalize().into()
}

/// [`sha256`] as lowercase hex.
pub fn sha256_hex<I, P>(parts: I) -> String
where
    I: IntoIterator<Item = P>,
    P: AsRef<[u8]>,
{
    sha256(parts).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::sha256_hex;

    #[test]
    fn one_part_is_plain_sha256_and_parts_are_separated() {
        assert_eq!(
            sha256_hex(["abc"]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(sha256_hex(["ab", "c"]), sha256_hex(["a", "bc"]));
        assert_eq!(sha256_hex(["a", "b"]), sha256_hex([&b"a\0b"[..]]));
    }
}
