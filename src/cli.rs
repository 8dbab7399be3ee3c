//! Command line: `edm run --config edm.toml [--<key> <value>]...`.
//!
//! Every configuration key is also a `run` flag of the same name, generated
//! from [`crate::config::KEYS`], so `--help` always lists what the code
//! accepts. Flags override the file.

use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::config::{KEYS, Kind};

/// The `edm` command tree.
pub fn command() -> Command {
    let run = Command::new("run")
        .about("Receive dnstap and write pseudonymised Parquet until SIGTERM/SIGINT (or until --input-file is read)")
        .arg(
            Arg::new("config")
                .long("config")
                .visible_alias("config-file")
                .short('c')
                .value_name("FILE")
                .help("TOML configuration file (reference key names)")
                .value_parser(clap::value_parser!(PathBuf)),
        )
        .args(KEYS.iter().filter(|k| k.name != "config-file").map(|k| {
            let a = Arg::new(k.name).long(k.name).help(k.help).action(ArgAction::Set);
            match k.kind {
                Kind::Bool => a
                    .num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value("true")
                    .value_name("BOOL"),
                Kind::Int => a.value_name("N"),
                Kind::Str => a.value_name("VALUE"),
            }
        }));
    Command::new("edm")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Edge DNSTAP Minimiser: dnstap in, pseudonymised Parquet out")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(run)
        .subcommand(bench())
        .subcommand(
            Command::new("compile")
                .about("Compile a name list (text, one name per line, or CSV with a name column) into an .fst file that loads in milliseconds")
                .arg(
                    Arg::new("input")
                        .required(true)
                        .value_name("IN")
                        .help("text or CSV list")
                        .value_parser(clap::value_parser!(PathBuf)),
                )
                .arg(
                    Arg::new("output")
                        .required(true)
                        .value_name("OUT.fst")
                        .help("where to write the compiled list (atomically)")
                        .value_parser(clap::value_parser!(PathBuf)),
                ),
        )
}

fn bench() -> Command {
    let n = |name: &'static str, default: &'static str, help: &'static str| {
        Arg::new(name)
            .long(name)
            .value_name("N")
            .default_value(default)
            .help(help)
            .value_parser(clap::value_parser!(u64))
    };
    Command::new("bench")
        .about("Load tool: send a seeded synthetic dnstap workload to a child `edm run` over a unix socket and print one JSON line (frames/s from first frame to the last Parquet file flushed, CPU seconds, peak RSS)")
        .arg(n("frames", "1000000", "frames per run"))
        .arg(n("runs", "1", "measured runs; the median is reported"))
        .arg(n("seed", "1", "workload seed"))
        .arg(n("clients", "100000", "distinct client addresses (Zipf)"))
        .arg(n("workers", "0", "minimiser-workers of the child (0 = number of CPUs)"))
        .arg(n(
            "duration",
            "0",
            "soak mode: keep sending fresh chunks of --frames frames for this many seconds in one run, sampling the child's RSS every 10 s (0 = off)",
        ))
        .arg(n(
            "cache-entries",
            "1000000",
            "cryptopan-address-entries and qname-seen-entries of the child",
        ))
        .arg(
            Arg::new("dir")
                .long("dir")
                .value_name("DIR")
                .help("where run directories go (default: a temporary directory)")
                .value_parser(clap::value_parser!(PathBuf)),
        )
        .arg(
            Arg::new("write-capture")
                .long("write-capture")
                .value_name("FILE")
                .help("write the workload as a Frame Streams file (for fstrm_replay) and exit, without running edm")
                .value_parser(clap::value_parser!(PathBuf)),
        )
        .arg(
            Arg::new("keep")
                .long("keep")
                .action(ArgAction::SetTrue)
                .help("keep the run directories (config, Parquet output)"),
        )
}

/// The options of a `bench` invocation; `edm` is the binary to start.
pub fn bench_options(m: &ArgMatches, edm: PathBuf) -> crate::loadgen::bench::Options {
    let n = |k: &str| m.get_one::<u64>(k).copied().unwrap_or(0);
    crate::loadgen::bench::Options {
        spec: crate::loadgen::workload::Spec {
            seed: n("seed"),
            frames: n("frames") as usize,
            clients: n("clients").max(1) as usize,
            ..Default::default()
        },
        runs: n("runs").max(1) as usize,
        workers: n("workers") as i64,
        cache_entries: n("cache-entries").max(1) as i64,
        dir: m.get_one::<PathBuf>("dir").cloned(),
        keep: m.get_flag("keep"),
        write_capture: m.get_one::<PathBuf>("write-capture").cloned(),
        edm,
        duration: Some(n("duration"))
            .filter(|d| *d > 0)
            .map(std::time::Duration::from_secs),
    }
}

/// The config path and flag overrides of a `run` invocation, in key order.
pub fn run_args(m: &ArgMatches) -> (Option<PathBuf>, Vec<(String, String)>) {
    let path = m.get_one::<PathBuf>("config").cloned();
    let overrides = KEYS
        .iter()
        .filter(|k| k.name != "config-file")
        .filter_map(|k| {
            m.get_one::<String>(k.name)
                .map(|v| (k.name.to_string(), v.clone()))
        })
        .collect();
    (path, overrides)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_generated_from_keys() {
        command().debug_assert();
        let m = command()
            .try_get_matches_from([
                "edm",
                "run",
                "--config",
                "edm.toml",
                "--input-file",
                "x.fstrm",
                "--disable-session-files",
                "--minimiser-workers",
                "2",
            ])
            .unwrap();
        let (_, sub) = m.subcommand().unwrap();
        let (path, o) = run_args(sub);
        assert_eq!(path, Some(PathBuf::from("edm.toml")));
        assert!(o.contains(&("input-file".into(), "x.fstrm".into())));
        assert!(o.contains(&("disable-session-files".into(), "true".into())));
        assert!(o.contains(&("minimiser-workers".into(), "2".into())));
    }
}
