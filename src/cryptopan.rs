//! STUB (replaced by the real module)
#![allow(missing_docs, clippy::all)]
pub const DEFAULT_SALT: &str = "edm-kdf-salt-val";
#[derive(Debug, thiserror::Error)]
pub enum KdfError { #[error("x")] X }
#[derive(Clone, Debug)]
pub struct CryptoPan;
impl CryptoPan {
    pub fn from_passphrase(_p: &str, _s: &str) -> Result<Self, KdfError> { Ok(CryptoPan) }
    pub fn anonymise_bytes(&self, a: &[u8]) -> Pseudonym { match a.len() { 4 => Pseudonym::V4([0;4]), 16 => Pseudonym::V6([0;16]), n => Pseudonym::Invalid(n) } }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pseudonym { V4([u8; 4]), V6([u8; 16]), Invalid(usize) }
