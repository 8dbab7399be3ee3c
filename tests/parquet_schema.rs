//! An independent reader (pyarrow, via `tests/py/check_schema.py`) reads every
//! session and histogram file edm writes for the bundled corpora, and checks
//! the reference schema column by column (names, physical and logical types,
//! optional/required, Snappy) and the `sessionData` root name.
//!
//! Needs a python with pyarrow: `EDM_TEST_PYTHON`, else `python3`. Without
//! one the test prints SKIPPED, except under CI (`.ci/run` installs it).

mod common;

use std::process::Command;

use common::*;

#[test]
fn pyarrow_reads_every_file_with_the_reference_schema() {
    let Some(python) = python_with_pyarrow() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "pyarrow is required under CI (EDM_TEST_PYTHON)"
        );
        eprintln!(
            "SKIPPED pyarrow_reads_every_file_with_the_reference_schema: no python with pyarrow"
        );
        return;
    };
    for (capture, well_known) in [
        ("sample.fstrm", "well-known-domains.txt"),
        ("unbound.fstrm", "histogram/unbound-well-known.txt"),
    ] {
        let dir = tempdir("schema");
        let cfg = config_text(
            dir.path(),
            &format!("input-file = \"{}\"", testdata(capture).display()),
            "minimiser-workers = 2",
        )
        .replace(
            &testdata("well-known-domains.txt").display().to_string(),
            &testdata(well_known).display().to_string(),
        );
        let f = run_to_end(dir.path(), &cfg, &[]);
        assert!(f.status.success(), "{}", f.stderr.join("\n"));
        let s = f.summary();
        let sessions = parquet_files(&dir.path().join("data/parquet/sessions"));
        let histograms = parquet_files(&dir.path().join("data/parquet/histograms/outbox"));
        assert!(!sessions.is_empty() && !histograms.is_empty());
        let out = Command::new(&python)
            .arg(manifest().join("tests/py/check_schema.py"))
            .arg("session")
            .args(&sessions)
            .arg("histogram")
            .args(&histograms)
            .output()
            .expect("run python");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{capture}: {}{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        // pyarrow read every row edm says it wrote.
        let rows = |kind: &str| -> u64 {
            stdout
                .lines()
                .filter(|l| l.contains(&format!("\"kind\": \"{kind}\"")))
                .filter_map(|l| l.rsplit_once("\"rows\": "))
                .filter_map(|(_, n)| n.trim_end_matches('}').parse::<u64>().ok())
                .sum()
        };
        assert_eq!(rows("session"), s.rows, "{capture}");
        assert_eq!(rows("histogram"), s.histogram_rows, "{capture}");
        eprintln!(
            "{capture}: pyarrow read {} session rows, {} histogram rows",
            s.rows, s.histogram_rows
        );
    }
}
