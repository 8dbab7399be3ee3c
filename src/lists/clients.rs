//! The ignored-client CIDR set (reference §4): one CIDR per line, empty lines
//! and lines starting with `#` skipped, nothing trimmed (a trailing CR is
//! tolerated), host bits masked. Prefixes are merged into disjoint ranges per
//! family and searched by binary search, which stays fast at 100 k prefixes.
//! IPv4-mapped client addresses are compared as IPv6, so an IPv4 CIDR does
//! not match them.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::names::ListError;

/// Result of checking a client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMatch {
    /// On the list: drop.
    Ignored,
    /// Not on the list.
    NotIgnored,
    /// Not a 4- or 16-byte address (fail closed: drop and count).
    Unparsable,
}

/// Disjoint sorted ranges per family.
#[derive(Debug, Clone, Default)]
pub struct ClientSet {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
    prefixes: usize,
}

fn merge<T: Copy + Ord + num_like::One>(mut r: Vec<(T, T)>) -> Vec<(T, T)> {
    r.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(r.len());
    for (a, b) in r {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_inc() => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

mod num_like {
    pub trait One {
        fn saturating_inc(self) -> Self;
    }
    impl One for u32 {
        fn saturating_inc(self) -> Self {
            self.saturating_add(1)
        }
    }
    impl One for u128 {
        fn saturating_inc(self) -> Self {
            self.saturating_add(1)
        }
    }
}

fn contains<T: Copy + Ord>(r: &[(T, T)], x: T) -> bool {
    let i = r.partition_point(|&(a, _)| a <= x);
    i > 0 && x <= r[i - 1].1
}

impl ClientSet {
    /// Load a list file; `Ok(None)` when it has no CIDRs (list disabled).
    ///
    /// # Errors
    /// [`ListError`] naming the file and every bad line.
    pub fn load(path: &Path) -> Result<Option<Self>, ListError> {
        let text = std::fs::read_to_string(path).map_err(|source| ListError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_text(&text, path)
    }

    /// Parse list text; `origin` names it in errors.
    ///
    /// # Errors
    /// [`ListError::BadLines`].
    pub fn from_text(text: &str, origin: &Path) -> Result<Option<Self>, ListError> {
        let (mut v4, mut v6, mut bad) = (Vec::new(), Vec::new(), Vec::new());
        for (i, line) in text.split('\n').enumerate() {
            let l = line.strip_suffix('\r').unwrap_or(line);
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            match l.parse::<ipnet::IpNet>() {
                Ok(ipnet::IpNet::V4(n)) => {
                    v4.push((u32::from(n.network()), u32::from(n.broadcast())))
                }
                Ok(ipnet::IpNet::V6(n)) => {
                    v6.push((u128::from(n.network()), u128::from(n.broadcast())))
                }
                Err(_) if bad.len() < 20 => bad.push((i + 1, format!("not a CIDR prefix: {l:?}"))),
                Err(_) => {}
            }
        }
        if !bad.is_empty() {
            return Err(ListError::BadLines {
                path: PathBuf::from(origin),
                lines: bad,
            });
        }
        let prefixes = v4.len() + v6.len();
        if prefixes == 0 {
            return Ok(None);
        }
        Ok(Some(Self {
            v4: merge(v4),
            v6: merge(v6),
            prefixes,
        }))
    }

    /// Number of prefixes loaded.
    pub fn len(&self) -> usize {
        self.prefixes
    }

    /// True if no prefixes (never for a loaded set).
    pub fn is_empty(&self) -> bool {
        self.prefixes == 0
    }

    /// Check a raw client address.
    pub fn check(&self, addr: &[u8]) -> ClientMatch {
        let hit = match addr.len() {
            4 => contains(
                &self.v4,
                u32::from_be_bytes([addr[0], addr[1], addr[2], addr[3]]),
            ),
            16 => {
                let mut b = [0u8; 16];
                b.copy_from_slice(addr);
                contains(&self.v6, u128::from_be_bytes(b))
            }
            _ => return ClientMatch::Unparsable,
        };
        if hit {
            ClientMatch::Ignored
        } else {
            ClientMatch::NotIgnored
        }
    }

    /// Check a parsed address (tests, tools).
    pub fn check_ip(&self, ip: IpAddr) -> ClientMatch {
        match ip {
            IpAddr::V4(a) => self.check(&a.octets()),
            IpAddr::V6(a) => self.check(&a.octets()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(t: &str) -> ClientSet {
        ClientSet::from_text(t, Path::new("t")).unwrap().unwrap()
    }

    #[test]
    fn reference_valid1_and_valid2() {
        let v1 = set("127.0.0.1/32\n127.0.0.2/32\n10.0.0.0/8\n::1/128\n::2/128\n2001:db8::/32\n");
        let v2 = set("127.0.0.3/32\n127.0.0.4/32\n198.51.100.0/24\n::3/128\n::4/128\n3fff::/20\n");
        let ignored = [
            "127.0.0.1",
            "127.0.0.2",
            "10.10.8.5",
            "::1",
            "::2",
            "2001:db8:10:11::10",
        ];
        let passed = ["127.0.0.3", "198.51.100.10", "::3", "3fff:10:11::10"];
        for a in ignored {
            assert_eq!(v1.check_ip(a.parse().unwrap()), ClientMatch::Ignored, "{a}");
            assert_eq!(
                v2.check_ip(a.parse().unwrap()),
                ClientMatch::NotIgnored,
                "{a}"
            );
        }
        for a in passed {
            assert_eq!(
                v1.check_ip(a.parse().unwrap()),
                ClientMatch::NotIgnored,
                "{a}"
            );
            assert_eq!(v2.check_ip(a.parse().unwrap()), ClientMatch::Ignored, "{a}");
        }
        assert_eq!(v1.check(&[1, 2, 3, 4, 5]), ClientMatch::Unparsable);
        assert_eq!(
            v1.check_ip("::ffff:10.1.1.1".parse().unwrap()),
            ClientMatch::NotIgnored
        );
    }

    #[test]
    fn comments_errors_and_empty() {
        assert_eq!(set("# x\n\n10.0.0.1/8\r\n::1/128\n").len(), 2);
        assert!(set("10.0.0.1/8\n").check(&[10, 9, 9, 9]) == ClientMatch::Ignored);
        let e = ClientSet::from_text("not-a-prefix\n 10.0.0.0/8\n10.0.0.1\n", Path::new("c.txt"))
            .unwrap_err();
        let t = e.to_string();
        assert!(
            t.contains("c.txt")
                && t.contains("line 1")
                && t.contains("line 2")
                && t.contains("line 3"),
            "{t}"
        );
        assert!(
            ClientSet::from_text("# only\n", Path::new("t"))
                .unwrap()
                .is_none()
        );
        assert!(ClientSet::load(Path::new("/nonexistent/x")).is_err());
    }
}
