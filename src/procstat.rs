//! The process's own resource use, read from `/proc/self` (Linux): peak
//! resident set size and CPU time. Reported in the "edm stopped" log line, so
//! the load tool (and operators) get exact figures for the whole run.

/// Resource use so far; fields are `None` where `/proc` is not available.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// Peak resident set size (`VmHWM`), bytes.
    pub peak_rss_bytes: Option<u64>,
    /// User + system CPU time, seconds.
    pub cpu_seconds: Option<f64>,
}

/// Read the current process's usage.
pub fn current() -> Usage {
    Usage {
        peak_rss_bytes: std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| vm_hwm(&s)),
        cpu_seconds: std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| cpu_ticks(&s))
            // USER_HZ is 100 on every Linux architecture edm targets.
            .map(|t| t as f64 / 100.0),
    }
}

fn vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// utime + stime (fields 14 and 15) from `/proc/<pid>/stat`; the command name
/// (field 2) may contain spaces, so fields are counted after its `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_formats() {
        assert_eq!(
            vm_hwm("Name:\tedm\nVmPeak:\t  100 kB\nVmHWM:\t   2048 kB\n"),
            Some(2048 * 1024)
        );
        assert_eq!(vm_hwm("Name: x\n"), None);
        let stat = "1234 (edm worker) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 5 0";
        assert_eq!(cpu_ticks(stat), Some(325));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn reads_this_process() {
        let u = current();
        if cfg!(target_os = "linux") {
            assert!(u.peak_rss_bytes.unwrap() > 0);
            assert!(u.cpu_seconds.is_some());
        }
    }
}
