//! STUB
#![allow(missing_docs, clippy::all, unused)]
use std::path::Path;
#[derive(Debug, thiserror::Error)] pub enum ListError { #[error("x")] X }
#[derive(Debug)] pub struct NameList;
pub struct Match { pub index: u32, pub suffix: bool }
impl NameList { pub fn load(p: &Path) -> Result<Self, ListError> { Ok(NameList) } pub fn is_empty(&self) -> bool { true } pub fn lookup(&self, n: &str) -> Option<Match> { None } pub fn name_at(&self, i: u32) -> Option<&str> { None } }
#[derive(Debug)] pub struct CompileStats;
pub fn compile(i: &Path, o: &Path) -> Result<CompileStats, ListError> { Ok(CompileStats) }
