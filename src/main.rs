//! The `edm` binary: parse the command line, load the configuration, set up
//! logging and signals, run the service, map the outcome to an exit code.

use std::process::ExitCode;

use edm::config::Config;
use edm::error::Chain;
use tokio_util::sync::CancellationToken;

/// mimalloc: per-thread free lists, so rows built by a worker and freed by
/// the collector cost no arena locking, and freed memory is reused without
/// the fragmentation of glibc arenas.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let matches = edm::cli::command().get_matches();
    let sub = match matches.subcommand() {
        Some(("run", sub)) => sub,
        Some(("compile", sub)) => return compile(sub),
        Some(("bench", sub)) => return bench(sub),
        _ => return ExitCode::FAILURE,
    };
    let (path, overrides) = edm::cli::run_args(sub);
    let config = match Config::resolve(path.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("edm: {}", Chain(&e));
            return ExitCode::FAILURE;
        }
    };
    init_tracing(config.debug);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("edm: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let token = CancellationToken::new();
    let result = rt.block_on(async {
        tokio::spawn(signals(token.clone()));
        edm::service::run(config, overrides, token).await
    });
    match result {
        Ok(s) => {
            let usage = edm::procstat::current();
            tracing::info!(
                frames = s.frames,
                processed = s.processed,
                rows_written = s.rows_written,
                dropped = s.dropped,
                session_disabled = s.session_disabled,
                files = s.files,
                write_errors = s.write_errors,
                session_dir = %s.session_dir.display(),
                cpu_s = usage.cpu_seconds.unwrap_or(0.0),
                peak_rss_bytes = usage.peak_rss_bytes.unwrap_or(0),
                "edm stopped"
            );
            println!(
                "edm: {} frames, {} session rows written, {} histogram updates ({} rows), {} dropped, {} files in {}",
                s.frames,
                s.rows_written,
                s.histogram_updates,
                s.histogram_rows_written,
                s.dropped,
                s.files,
                s.session_dir.parent().unwrap_or(&s.session_dir).display()
            );
            if s.write_errors > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            // One line on stderr, also when logs go elsewhere.
            eprintln!("edm: {}", Chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn bench(sub: &clap::ArgMatches) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("edm: cannot find the edm binary to start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = edm::cli::bench_options(sub, exe);
    if let Some(path) = &opts.write_capture {
        let w = edm::loadgen::workload::generate(&opts.spec);
        return match edm::loadgen::bench::write_capture(&w, path) {
            Ok(()) => {
                println!(
                    "edm bench: wrote {} frames ({} bytes) to {}",
                    w.frames,
                    w.data.len(),
                    path.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("edm bench: {}", Chain(&e));
                ExitCode::FAILURE
            }
        };
    }
    match edm::loadgen::bench::run(&opts) {
        Ok(report) => {
            println!("{}", report.to_json());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("edm bench: {}", Chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn compile(sub: &clap::ArgMatches) -> ExitCode {
    let (Some(input), Some(output)) = (
        sub.get_one::<std::path::PathBuf>("input"),
        sub.get_one::<std::path::PathBuf>("output"),
    ) else {
        return ExitCode::FAILURE;
    };
    let started = std::time::Instant::now();
    match edm::lists::names::compile(input, output) {
        Ok(stats) => {
            println!(
                "edm: compiled {} into {} ({stats:?}) in {:.1?}",
                input.display(),
                output.display(),
                started.elapsed()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("edm: {}", Chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(debug: bool) {
    // The store's own progress messages are noise at info level.
    let default = if debug {
        "debug"
    } else {
        "info,fjall=warn,lsm_tree=warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("EDM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Cancel `token` on SIGTERM or SIGINT. A second signal exits at once.
async fn signals(token: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    for n in 0.. {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        if n > 0 {
            tracing::warn!("second signal: exiting without draining");
            std::process::exit(1);
        }
        tracing::info!("shutting down: draining inputs and flushing files");
        token.cancel();
    }
}
