//! Name lists as `fst` maps: the well-known-domains list (name → index) and
//! the ignored-question list.
//!
//! Input is plain text (one name per line, `#` comment lines, blank lines
//! ignored, surrounding whitespace trimmed; a leading `.` means every strict
//! subdomain), CSV (the last comma-separated field of each line; a first line
//! without a dot is taken as a header), or a prebuilt `.fst` from
//! [`compile`]. Names are lowercased and made fully qualified. The index of an
//! entry is its rank among the sorted names, so [`NameList::name_at`] is the
//! inverse of [`NameList::lookup`].

use std::path::{Path, PathBuf};

use fst::{Map, MapBuilder, Streamer};

/// Bad lines reported per file.
const MAX_BAD_LINES: usize = 20;

/// A list could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// Reading or writing failed.
    #[error("{path}: i/o error")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Lines that are not valid entries.
    #[error("{path}: {}", lines.iter().map(|(n, r)| format!("line {n}: {r}")).collect::<Vec<_>>().join("; "))]
    BadLines {
        /// The file.
        path: PathBuf,
        /// (line number, reason), the first few.
        lines: Vec<(usize, String)>,
    },
    /// The `.fst` file is a valid map, but not one `edm compile` writes: the
    /// value of each name must be its rank.
    #[error(
        "{path}: not an edm name list (values must be the ranks of the names; rebuild it with `edm compile`)"
    )]
    Layout {
        /// The file.
        path: PathBuf,
    },
    /// The `.fst` file is corrupt.
    #[error("{path}: not a valid .fst list")]
    Fst {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: fst::Error,
    },
}

/// A lookup hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    /// Rank of the entry among the sorted entries.
    pub index: u32,
    /// Matched through a wildcard (leading-dot) entry.
    pub suffix: bool,
}

/// Statistics of a [`compile`] run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileStats {
    /// Distinct entries written.
    pub names: usize,
    /// Bytes of the `.fst` file.
    pub bytes: usize,
}

/// Every entry's bytes, by index, and an open-addressing table of their
/// XXH3-64 hashes (linear probing, at most half full). [`NameList::lookup`]
/// uses only this: a name or suffix that is not an entry costs one hash and
/// about one probe, an entry one probe and one comparison (an `fst` walk per
/// suffix cost ten times more). A hash hit is always confirmed by comparing
/// the bytes, so a collision cannot give a wrong answer.
struct HashIndex {
    /// Upper 32 bits of the hash, then index + 1 in the lower 32; 0 = empty.
    slots: Box<[u64]>,
    mask: usize,
    /// All entries, concatenated in index order.
    keys: Vec<u8>,
    /// `ends[i]` = end of entry `i` in `keys`.
    ends: Vec<u32>,
}

impl HashIndex {
    fn hash(key: &[u8]) -> u64 {
        xxhash_rust::xxh3::xxh3_64(key)
    }

    /// `None` if the map is not one [`build_map`] makes (values = ranks) or
    /// holds more than 4 GiB of names.
    fn build(map: &Map<Vec<u8>>) -> Option<Self> {
        let len = (map.len().max(1) * 2).next_power_of_two();
        let mut slots = vec![0u64; len].into_boxed_slice();
        let mask = len - 1;
        let mut keys = Vec::new();
        let mut ends = Vec::with_capacity(map.len());
        let mut s = map.stream();
        while let Some((k, v)) = s.next() {
            let index = ends.len();
            if v != index as u64 {
                return None;
            }
            keys.extend_from_slice(k);
            ends.push(u32::try_from(keys.len()).ok()?);
            let h = Self::hash(k);
            let mut i = h as usize & mask;
            while slots[i] != 0 {
                i = (i + 1) & mask;
            }
            slots[i] = (h & !0xffff_ffff) | (index as u64 + 1);
        }
        Some(Self {
            slots,
            mask,
            keys,
            ends,
        })
    }

    fn key(&self, index: usize) -> Option<&[u8]> {
        let end = *self.ends.get(index)? as usize;
        let start = match index {
            0 => 0,
            i => self.ends[i - 1] as usize,
        };
        self.keys.get(start..end)
    }

    /// Entry `index` as text (`None` if it is not UTF-8).
    fn name(&self, index: usize) -> Option<&str> {
        self.key(index).and_then(|k| std::str::from_utf8(k).ok())
    }

    #[inline]
    fn get(&self, key: &[u8]) -> Option<u32> {
        let h = Self::hash(key);
        let tag = h & !0xffff_ffff;
        let mut i = h as usize & self.mask;
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                return None;
            }
            if slot & !0xffff_ffff == tag {
                let index = (slot & 0xffff_ffff) as u32 - 1;
                if self.key(index as usize) == Some(key) {
                    return Some(index);
                }
            }
            i = (i + 1) & self.mask;
        }
    }
}

/// An immutable name list. The `fst` map is only its file format: once
/// loaded, every lookup and `name_at` uses the `HashIndex`.
pub struct NameList {
    index: HashIndex,
}

impl std::fmt::Debug for NameList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NameList")
            .field("len", &self.len())
            .finish()
    }
}

/// Normalise one entry; `Err` is the reason it is invalid.
fn normalise(raw: &str) -> Result<String, String> {
    let mut n = raw.to_ascii_lowercase();
    if n.chars().any(char::is_whitespace) {
        return Err("whitespace inside a name".into());
    }
    if !n.ends_with('.') {
        n.push('.');
    }
    let body = n.strip_prefix('.').unwrap_or(&n);
    if body == "." || body.is_empty() {
        return Err("empty name".into());
    }
    let mut wire = 1;
    for label in body[..body.len() - 1].split('.') {
        if label.is_empty() {
            return Err("empty label".into());
        }
        if label.len() > 63 {
            return Err("label longer than 63 octets".into());
        }
        wire += label.len() + 1;
    }
    if wire > 255 {
        return Err("name longer than 255 octets".into());
    }
    Ok(n)
}

fn parse_text(path: &Path, text: &str) -> Result<Vec<String>, ListError> {
    let csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let mut names = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut l = line.trim();
        if csv {
            l = l.rsplit(',').next().unwrap_or("").trim().trim_matches('"');
            if i == 0 && !l.contains('.') {
                continue;
            }
        }
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        match normalise(l) {
            Ok(n) => names.push(n),
            Err(r) if bad.len() < MAX_BAD_LINES => bad.push((i + 1, format!("{r}: {l:?}"))),
            Err(_) => {}
        }
    }
    if bad.is_empty() {
        Ok(names)
    } else {
        Err(ListError::BadLines {
            path: path.to_path_buf(),
            lines: bad,
        })
    }
}

fn build_map(mut names: Vec<String>) -> Map<Vec<u8>> {
    names.sort_unstable();
    names.dedup();
    let mut b = MapBuilder::memory();
    for (i, n) in names.iter().enumerate() {
        // Sorted and deduplicated: insertion cannot fail.
        let _ = b.insert(n, i as u64);
    }
    Map::new(b.into_inner().unwrap_or_default()).unwrap_or_default()
}

impl NameList {
    /// [`ListError::Layout`] naming `path` if the map's values are not the
    /// ranks of its keys.
    fn from_map(map: &Map<Vec<u8>>, path: &Path) -> Result<Self, ListError> {
        let index = HashIndex::build(map).ok_or_else(|| ListError::Layout {
            path: path.to_path_buf(),
        })?;
        Ok(Self { index })
    }

    /// Load a text, CSV or `.fst` list.
    ///
    /// # Errors
    /// [`ListError`] naming the file (and lines).
    pub fn load(path: &Path) -> Result<Self, ListError> {
        let io = |source| ListError::Io {
            path: path.to_path_buf(),
            source,
        };
        if path.extension().is_some_and(|e| e == "fst") {
            let bytes = std::fs::read(path).map_err(io)?;
            let map = Map::new(bytes).map_err(|source| ListError::Fst {
                path: path.to_path_buf(),
                source,
            })?;
            return Self::from_map(&map, path);
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Self::from_map(&build_map(parse_text(path, &text)?), path)
    }

    /// Build from names (tests and tools).
    ///
    /// # Errors
    /// [`ListError::BadLines`] for invalid names.
    pub fn from_names<I: IntoIterator<Item = S>, S: AsRef<str>>(
        names: I,
    ) -> Result<Self, ListError> {
        let text: Vec<String> = names.into_iter().map(|s| s.as_ref().to_string()).collect();
        let memory = Path::new("<memory>");
        Self::from_map(&build_map(parse_text(memory, &text.join("\n"))?), memory)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.index.ends.len()
    }

    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.index.ends.is_empty()
    }

    /// Exact match first, then each suffix from the left with its leading
    /// dot. Case-insensitive; no allocation (a stack buffer holds the
    /// lowercased name; names longer than it never match).
    pub fn lookup(&self, name: &str) -> Option<Match> {
        let b = name.as_bytes();
        // Most names fit the small buffer; escapes can make a valid name longer.
        if b.len() <= 256 {
            self.lookup_in(b, &mut [0u8; 256])
        } else if b.len() <= 1024 {
            self.lookup_in(b, &mut [0u8; 1024])
        } else {
            None
        }
    }

    fn lookup_in(&self, b: &[u8], buf: &mut [u8]) -> Option<Match> {
        let lower = &mut buf[..b.len()];
        for (d, s) in lower.iter_mut().zip(b) {
            *d = s.to_ascii_lowercase();
        }
        self.lookup_lowercase(lower)
    }

    /// [`NameList::lookup`] for a name already in ASCII lowercase, without
    /// copying it.
    pub fn lookup_lowercase(&self, lower: &[u8]) -> Option<Match> {
        if lower.is_empty() || lower.len() > 1024 {
            return None;
        }
        if let Some(i) = self.index.get(lower) {
            return Some(Match {
                index: i,
                suffix: false,
            });
        }
        // Suffixes start at label boundaries: every dot but the last, unless
        // it is escaped. Most names have no backslash; their dots are found
        // with memchr instead of a loop over every byte.
        let body = &lower[..lower.len() - 1];
        if memchr::memchr(b'\\', body).is_none() {
            return memchr::memchr_iter(b'.', body)
                .filter(|&pos| pos > 0)
                .find_map(|pos| self.index.get(&lower[pos..]))
                .map(|index| Match {
                    index,
                    suffix: true,
                });
        }
        let mut escaped = false;
        for pos in 0..lower.len().saturating_sub(1) {
            let c = lower[pos];
            if escaped {
                escaped = false;
                continue;
            }
            if c == b'\\' {
                escaped = true;
            } else if c == b'.'
                && pos > 0
                && let Some(i) = self.index.get(&lower[pos..])
            {
                return Some(Match {
                    index: i,
                    suffix: true,
                });
            }
        }
        None
    }

    /// The entry at `index`.
    pub fn name_at(&self, index: u32) -> Option<&str> {
        self.index.name(index as usize).filter(|s| !s.is_empty())
    }

    /// Iterate entries in index order (an entry that is not UTF-8 is empty).
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.index.name(i).unwrap_or(""))
    }
}

/// Compile a text or CSV list into a `.fst` file (tmp + rename).
///
/// # Errors
/// [`ListError`] naming the file.
pub fn compile(input: &Path, output: &Path) -> Result<CompileStats, ListError> {
    let text = std::fs::read_to_string(input).map_err(|source| ListError::Io {
        path: input.to_path_buf(),
        source,
    })?;
    let map = build_map(parse_text(input, &text)?);
    let names = map.len();
    let bytes = map.into_fst().into_inner();
    let tmp = output.with_extension("fst.tmp");
    let io = |source| ListError::Io {
        path: output.to_path_buf(),
        source,
    };
    std::fs::write(&tmp, &bytes).map_err(io)?;
    std::fs::rename(&tmp, output).map_err(io)?;
    Ok(CompileStats {
        names,
        bytes: bytes.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_suffix_scenarios() {
        let l = NameList::from_names(["example.com.", ".example.net."]).unwrap();
        for n in ["example.com.", "eXample.com."] {
            assert_eq!(l.lookup(n).map(|m| m.suffix), Some(false), "{n}");
        }
        for n in [
            "www.example.net.",
            "wWw.eXample.net.",
            "example.www.example.net.",
        ] {
            assert_eq!(l.lookup(n).map(|m| m.suffix), Some(true), "{n}");
        }
        for n in ["www.example.com.", "example.net.", "."] {
            assert!(l.lookup(n).is_none(), "{n}");
        }
        let m = l.lookup("www.example.net.").unwrap();
        assert_eq!(l.name_at(m.index), Some(".example.net."));
        assert_eq!(
            l.name_at(l.lookup("example.com.").unwrap().index),
            Some("example.com.")
        );
    }

    #[test]
    fn bad_lines_are_reported_with_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.txt");
        std::fs::write(&p, "# c\n\nok.example\na..b\nfine\nhas space.x\n").unwrap();
        let e = NameList::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("line 4") && e.contains("line 6") && e.contains("l.txt"),
            "{e}"
        );
    }

    #[test]
    fn csv_and_fst_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("top.csv");
        std::fs::write(&csv, "rank,domain\n1,Google.com\n2,.github.com\n").unwrap();
        let out = dir.path().join("top.fst");
        let stats = compile(&csv, &out).unwrap();
        assert_eq!(stats.names, 2);
        let l = NameList::load(&out).unwrap();
        assert!(l.lookup("google.com.").is_some());
        assert!(l.lookup("api.github.com.").unwrap().suffix);
        let e = NameList::load(&dir.path().join("missing.txt")).unwrap_err();
        assert!(e.to_string().contains("missing.txt"));
    }

    #[test]
    fn hash_index_agrees_with_the_map() {
        // Every entry is found with its own index, through the hash index
        // and the fst; names that are not entries, and their suffixes, are not.
        let names: Vec<String> = (0..5000)
            .map(|i| match i % 3 {
                0 => format!("n{i}.example."),
                1 => format!(".w{i}.example.net."),
                _ => format!("x{i}.y{i}.org."),
            })
            .collect();
        let l = NameList::from_names(&names).unwrap();
        assert_eq!(l.len(), names.len());
        for n in &names {
            if let Some(body) = n.strip_prefix('.') {
                let m = l.lookup(&format!("A.{body}")).unwrap();
                assert!(m.suffix);
                assert_eq!(l.name_at(m.index), Some(n.as_str()));
                assert!(l.lookup(body).is_none(), "{body}");
            } else {
                let m = l.lookup(&n.to_ascii_uppercase()).unwrap();
                assert!(!m.suffix);
                assert_eq!(l.name_at(m.index), Some(n.as_str()));
                assert!(l.lookup(&format!("sub.{n}")).is_none(), "{n}");
            }
        }
        for i in 0..5000 {
            assert!(l.lookup(&format!("n{i}.example.com.")).is_none());
        }
        assert!(
            NameList::from_names::<[&str; 0], &str>([])
                .unwrap()
                .lookup("a.")
                .is_none()
        );
    }

    #[test]
    fn fst_without_rank_values_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("foreign.fst");
        let mut b = MapBuilder::memory();
        b.insert("a.example.", 7).unwrap();
        std::fs::write(&p, b.into_inner().unwrap()).unwrap();
        let e = NameList::load(&p).unwrap_err();
        assert!(matches!(e, ListError::Layout { .. }), "{e}");
        assert!(e.to_string().contains("foreign.fst"), "{e}");
    }

    #[test]
    fn escaped_dot_is_not_a_boundary() {
        let l = NameList::from_names([".b.example."]).unwrap();
        assert!(l.lookup("a.b.example.").is_some());
        assert!(l.lookup("a\\.b.example.").is_none());
        // An escaped backslash does not escape the dot after it.
        assert!(l.lookup("a\\\\.b.example.").unwrap().suffix);
        assert!(l.lookup("a\\032x.b.example.").unwrap().suffix);
        assert!(l.lookup("b\\.example.").is_none());
    }

    /// Names with and without escapes give what a byte-by-byte scan of
    /// their unescaped dots gives (the list's fast path skips that scan for
    /// names without a backslash).
    #[test]
    fn suffix_boundaries_match_a_byte_scan() {
        let entries = [".b.example.", ".\\.b.example.", "a.b.example.", ".x\\.y."];
        let l = NameList::from_names(entries).unwrap();
        let reference = |name: &str| -> Option<(String, bool)> {
            let n = name.as_bytes();
            if let Some(e) = entries.iter().find(|e| **e == name) {
                return Some((e.to_string(), false));
            }
            let mut escaped = false;
            for pos in 0..n.len() - 1 {
                match (escaped, n[pos]) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'.') if pos > 0 => {
                        if let Some(e) = entries.iter().find(|e| e.as_bytes() == &n[pos..]) {
                            return Some((e.to_string(), true));
                        }
                    }
                    _ => {}
                }
            }
            None
        };
        let parts = ["a", "b", "x", ".", "\\.", "\\\\", "\\032"];
        let mut x = 7u64;
        for _ in 0..20_000 {
            let mut name = String::new();
            for _ in 0..(x % 6) {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                name.push_str(parts[(x >> 33) as usize % parts.len()]);
            }
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            name.push_str([".b.example.", ".y.", "b.example.", "."][(x >> 33) as usize % 4]);
            let got = l
                .lookup(&name)
                .map(|m| (l.name_at(m.index).unwrap_or("").to_string(), m.suffix));
            assert_eq!(got, reference(&name), "{name}");
        }
    }
}
