//! Crypto-PAn prefix-preserving pseudonymisation with the reference's
//! argon2id key derivation (reference §3).
//!
//! Bytes 0–15 of the 32-byte key are the AES-128 key; bytes 16–31, encrypted
//! once, form the pad. For bit `i` the AES input is the pad with its first `i`
//! bits replaced by the address's first `i` bits; output bit `i` is the MSB of
//! the AES output, and the address is XORed with the collected bits. The per-bit
//! inputs are independent, so all of them are built first and encrypted with
//! `encrypt_blocks`, which pipelines AES-NI over several blocks at once.

use aes::Aes128;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockEncrypt, KeyInit};

/// Reference default salt.
pub const DEFAULT_SALT: &str = "edm-kdf-salt-val";

/// The key could not be derived.
#[derive(Debug, thiserror::Error)]
pub enum KdfError {
    /// argon2 rejected the parameters or inputs (e.g. a salt under 8 bytes).
    #[error("argon2id key derivation failed: {0}")]
    Argon2(String),
}

/// argon2id(passphrase, salt, t=1, m=65536 KiB, p=4) → 32 bytes.
///
/// # Errors
/// [`KdfError`] if argon2 rejects the inputs.
pub fn derive_key(passphrase: &str, salt: &str) -> Result<[u8; 32], KdfError> {
    let params =
        argon2::Params::new(65536, 1, 4, Some(32)).map_err(|e| KdfError::Argon2(e.to_string()))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; 32];
    a.hash_password_into(passphrase.as_bytes(), salt.as_bytes(), &mut out)
        .map_err(|e| KdfError::Argon2(e.to_string()))?;
    Ok(out)
}

/// A Crypto-PAn instance.
#[derive(Clone)]
pub struct CryptoPan {
    cipher: Aes128,
    pad: u128,
}

impl std::fmt::Debug for CryptoPan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CryptoPan { .. }")
    }
}

/// A pseudonymised address as emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pseudonym {
    /// IPv4 (also for IPv4-mapped input).
    V4([u8; 4]),
    /// IPv6.
    V6([u8; 16]),
    /// The input had this invalid length; the output is that many zero bytes.
    Invalid(usize),
}

impl Pseudonym {
    /// The bytes as emitted (zeros for `Invalid`).
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Pseudonym::V4(b) => b.to_vec(),
            Pseudonym::V6(b) => b.to_vec(),
            Pseudonym::Invalid(n) => vec![0; *n],
        }
    }
}

impl CryptoPan {
    /// From a raw 32-byte key.
    pub fn new(key: &[u8; 32]) -> Self {
        let cipher = Aes128::new(GenericArray::from_slice(&key[..16]));
        let mut pad = GenericArray::clone_from_slice(&key[16..]);
        cipher.encrypt_block(&mut pad);
        let mut p = [0u8; 16];
        p.copy_from_slice(&pad);
        Self {
            cipher,
            pad: u128::from_be_bytes(p),
        }
    }

    /// From a passphrase and salt via [`derive_key`].
    ///
    /// # Errors
    /// [`KdfError`].
    pub fn from_passphrase(passphrase: &str, salt: &str) -> Result<Self, KdfError> {
        Ok(Self::new(&derive_key(passphrase, salt)?))
    }

    /// Pseudonymise the top `bits` bits of `addr` (left-aligned in a u128).
    fn run<const N: usize>(&self, addr: u128) -> u128 {
        let mut blocks = [GenericArray::default(); N];
        for (i, b) in blocks.iter_mut().enumerate() {
            let mask: u128 = if i == 0 { 0 } else { !0u128 << (128 - i) };
            *b = GenericArray::from((addr & mask | self.pad & !mask).to_be_bytes());
        }
        self.cipher.encrypt_blocks(&mut blocks);
        let mut otp: u128 = 0;
        for (i, b) in blocks.iter().enumerate() {
            otp |= u128::from(b[0] >> 7) << (127 - i);
        }
        addr ^ otp
    }

    /// Pseudonymise an IPv4 address.
    pub fn anonymise_v4(&self, addr: u32) -> u32 {
        (self.run::<32>(u128::from(addr) << 96) >> 96) as u32
    }

    /// Pseudonymise an IPv6 address.
    pub fn anonymise_v6(&self, addr: u128) -> u128 {
        self.run::<128>(addr)
    }

    /// Reference semantics on raw dnstap address bytes: 4 → 4, IPv4-mapped
    /// 16 → 4 (as IPv4), 16 → 16, anything else → zeros of the same length.
    pub fn anonymise_bytes(&self, addr: &[u8]) -> Pseudonym {
        match addr.len() {
            4 => {
                let a = u32::from_be_bytes([addr[0], addr[1], addr[2], addr[3]]);
                Pseudonym::V4(self.anonymise_v4(a).to_be_bytes())
            }
            16 => {
                let mut b = [0u8; 16];
                b.copy_from_slice(addr);
                let v = u128::from_be_bytes(b);
                if v >> 32 == 0xffff {
                    Pseudonym::V4(self.anonymise_v4(v as u32).to_be_bytes())
                } else {
                    Pseudonym::V6(self.anonymise_v6(v).to_be_bytes())
                }
            }
            n => Pseudonym::Invalid(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn hex32(s: &str) -> [u8; 32] {
        let mut k = [0u8; 32];
        for (i, b) in k.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        k
    }

    fn anon(p: &CryptoPan, ip: &str) -> String {
        let ip: IpAddr = ip.parse().unwrap();
        let bytes = match ip {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        match p.anonymise_bytes(&bytes) {
            Pseudonym::V4(b) => std::net::Ipv4Addr::from(b).to_string(),
            Pseudonym::V6(b) => std::net::Ipv6Addr::from(b).to_string(),
            Pseudonym::Invalid(_) => panic!(),
        }
    }

    /// Every vector in testdata/cryptopan_vectors.json (copied from shared/spec/vectors).
    #[test]
    fn all_vectors() {
        let text = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/cryptopan_vectors.json"
        ));
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut n = 0;
        for set in v["raw_keys"].as_array().unwrap() {
            let p = CryptoPan::new(&hex32(set["key_hex"].as_str().unwrap()));
            for pair in set["vectors"].as_array().unwrap() {
                let (i, o) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
                let want: IpAddr = o.parse().unwrap();
                assert_eq!(anon(&p, i).parse::<IpAddr>().unwrap(), want, "{i}");
                n += 1;
            }
        }
        let argon = v
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.starts_with("argon2"))
            .map(|(_, v)| v.clone())
            .unwrap();
        for case in argon.as_array().unwrap() {
            let key = case["password"].as_str().or(case["key"].as_str()).unwrap();
            let salt = case["salt"].as_str().unwrap_or(DEFAULT_SALT);
            let p = CryptoPan::from_passphrase(key, salt).unwrap();
            for pair in case["vectors"].as_array().unwrap() {
                let (i, o) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
                assert_eq!(
                    anon(&p, i).parse::<IpAddr>().unwrap(),
                    o.parse::<IpAddr>().unwrap(),
                    "{key} {i}"
                );
                n += 1;
            }
        }
        assert!(n > 100, "{n} vectors");
    }

    #[test]
    fn pinned_reference_values() {
        assert_eq!(
            derive_key("key1", "aabbccddeeffgghh").unwrap(),
            hex32("2be502e9809c222baec21f41799295b5ac4f1c47de7f15b9f90418346bb1c99d")
        );
        let p = CryptoPan::from_passphrase("key1", "aabbccddeeffgghh").unwrap();
        assert_eq!(anon(&p, "198.51.100.20"), "58.92.11.53");
        assert_eq!(anon(&p, "198.51.100.30"), "58.92.11.62");
        assert_eq!(
            anon(&p, "2001:db8:1122:3344:5566:7788:99aa:bbcc"),
            "b780:8dc8:6ed9:cbc5:4d61:a6bb:6255:5a03"
        );
        // IPv4-mapped → 4 bytes, pseudonymised as IPv4.
        assert_eq!(anon(&p, "::ffff:198.51.100.20"), "58.92.11.53");
        assert_eq!(p.anonymise_bytes(&[1, 2, 3]), Pseudonym::Invalid(3));
        assert_eq!(p.anonymise_bytes(&[1, 2, 3]).to_vec(), vec![0, 0, 0]);
        assert_eq!(p.anonymise_bytes(&[]), Pseudonym::Invalid(0));
        let m = CryptoPan::from_passphrase("mysecret", DEFAULT_SALT).unwrap();
        assert_eq!(anon(&m, "192.0.2.1"), "63.239.141.253");
        assert_eq!(
            anon(&m, "2001:db8::1"),
            "ef90:f1ca:c007:81ff:c23:e7fe:181c:1f9"
        );
    }
}
