//! STUB
#![allow(missing_docs, clippy::all, unused)]
use std::path::Path;
use super::names::ListError;
#[derive(Debug)] pub struct ClientSet;
pub enum ClientMatch { Ignored, NotIgnored, Unparsable }
impl ClientSet { pub fn load(p: &Path) -> Result<Option<Self>, ListError> { Ok(None) } pub fn check(&self, a: &[u8]) -> ClientMatch { ClientMatch::NotIgnored } }
