//! Pseudonymous rater ids: HMAC-SHA256 of the id under a key taken from the
//! environment (never from a file the pipeline writes), so published marts
//! and pages can show the same rater across periods without showing who it
//! is.

use sha2::{Digest, Sha256};

use crate::policy::LoadedPolicy;

/// The key to pseudonymise with, if the policy asks for it; a usage error
/// when it asks but the environment variable is not set.
pub fn rater_key(policy: &LoadedPolicy) -> Result<Option<Vec<u8>>, crate::error::Failure> {
    let p = &policy.policy.privacy;
    if !p.pseudonymize_raters {
        return Ok(None);
    }
    match std::env::var(&p.key_env) {
        Ok(k) if !k.is_empty() => Ok(Some(k.into_bytes())),
        _ => Err(crate::error::Failure::Usage(format!(
            "privacy.pseudonymize_raters is on but the environment variable {} is not set: set it to a secret key (the same every night)",
            p.key_env
        ))),
    }
}

/// HMAC-SHA256 (RFC 2104).
fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// `R-` and the first 16 hex digits of the id's HMAC.
pub fn pseudonym(key: &[u8], id: &str) -> String {
    format!("R-{}", &crate::policy::hex(&hmac(key, id.as_bytes()))[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        // RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
        let mac = hmac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            crate::policy::hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn pseudonyms_are_stable_and_keyed() {
        assert_eq!(pseudonym(b"k1", "E0001"), pseudonym(b"k1", "E0001"));
        assert_ne!(pseudonym(b"k1", "E0001"), pseudonym(b"k2", "E0001"));
        assert_ne!(pseudonym(b"k1", "E0001"), pseudonym(b"k1", "E0002"));
    }
}
