//! Durable Parquet file writing and the file-name rules shared by session and
//! histogram files (reference §6 "Rotation and files", §7).
//!
//! A file is written as `<name>.tmp`, fsynced, renamed to `<name>` and the
//! directory fsynced, so a reader never sees a partial file under a final
//! name and a completed file survives a crash. As in the reference, a failed
//! write removes the temporary file while a failed rename keeps it for manual
//! recovery; [`leftover_tmp_files`] lists such files at startup.
//!
//! File names are `<prefix>-<start>_<stop>.parquet`, the times UTC RFC 3339
//! to whole seconds with `:` replaced by `-` ([`file_name`], [`parse_file_name`]).
//!
//! Files are written with the parquet crate's Arrow writer, Snappy on every
//! column, and without the embedded Arrow schema (`ARROW:schema`), like the
//! reference's parquet-go files: the Parquet schema alone describes them. The
//! Parquet root name comes from the Arrow schema's metadata key
//! [`SCHEMA_ROOT_KEY`].

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Arrow schema metadata key naming the Parquet schema root (e.g.
/// `sessionData`). Without it the parquet crate's default root name is used.
pub const SCHEMA_ROOT_KEY: &str = "edm.parquet.root";

/// Extension of files under construction.
const TMP_SUFFIX: &str = ".tmp";
/// Extension of finished files.
const PARQUET_SUFFIX: &str = ".parquet";
/// Mode of directories created for output files (before the umask).
const DIR_MODE: u32 = 0o750;

/// A failure to write a Parquet file; every variant names the file or directory.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The output directory could not be created.
    #[error("cannot create directory {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The temporary file could not be created.
    #[error("cannot create {}", path.display())]
    Create {
        /// The temporary file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Encoding or writing the Parquet data failed; the temporary file was removed.
    #[error("cannot write parquet file {}", path.display())]
    Parquet {
        /// The temporary file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: ParquetError,
    },
    /// Writing the temporary file failed; it was removed.
    #[error("cannot write {}", path.display())]
    Io {
        /// The temporary file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The temporary file could not be flushed to disk; it was removed.
    #[error("cannot sync {}", path.display())]
    Sync {
        /// The temporary file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The temporary file could not be renamed; it was kept for manual recovery.
    #[error("cannot rename {} to {}", from.display(), to.display())]
    Rename {
        /// The temporary file, still present.
        from: PathBuf,
        /// The final name.
        to: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file is in place under its final name, but the directory entry
    /// could not be flushed to disk, so it may not survive a crash.
    #[error("cannot sync directory {} after writing {}", dir.display(), path.display())]
    SyncDir {
        /// The directory.
        dir: PathBuf,
        /// The final file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl WriteError {
    /// The file (or for [`WriteError::CreateDir`] the directory) the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::CreateDir { path, .. }
            | Self::Create { path, .. }
            | Self::Parquet { path, .. }
            | Self::Io { path, .. }
            | Self::Sync { path, .. }
            | Self::SyncDir { path, .. } => path,
            Self::Rename { from, .. } => from,
        }
    }
}

/// A file name or file-name time that does not follow the naming rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not `YYYY-MM-DDTHH-MM-SS` followed by `Z` or `±hh:mm`, or not a valid date and time.
    #[error("{text:?} is not a file-name time (YYYY-MM-DDTHH-MM-SSZ)")]
    Time {
        /// The rejected text.
        text: String,
    },
    /// The name does not start with `<prefix>-`.
    #[error("file name {name:?} does not start with \"{prefix}-\"")]
    Prefix {
        /// The file name.
        name: String,
        /// The expected prefix.
        prefix: String,
    },
    /// The name does not end with `.parquet`.
    #[error("file name {name:?} does not end with \".parquet\"")]
    Suffix {
        /// The file name.
        name: String,
    },
    /// The name does not hold exactly two times separated by `_`.
    #[error("file name {name:?} does not have the form <prefix>-<start>_<stop>.parquet")]
    Times {
        /// The file name.
        name: String,
    },
    /// One of the two times is malformed.
    #[error("file name {name:?} has a malformed {which} time {text:?}")]
    NameTime {
        /// The file name.
        name: String,
        /// `"start"` or `"stop"`.
        which: &'static str,
        /// The rejected time text.
        text: String,
    },
}

/// File name stem time format: UTC RFC 3339 to whole seconds (fraction
/// truncated), `:` replaced by `-`, e.g. `2024-09-26T18-14-00Z`.
pub fn format_file_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}-{:02}-{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parse a time written by [`format_file_time`].
///
/// As the reference's Go layout `2006-01-02T15-04-05Z07:00`, this also
/// accepts a fraction after the seconds and a `±hh:mm` offset instead of `Z`.
/// The result is in UTC.
///
/// # Errors
/// [`NameError::Time`] when `s` is not such a time.
pub fn parse_file_time(s: &str) -> Result<OffsetDateTime, NameError> {
    parse_time_parts(s.as_bytes()).ok_or_else(|| NameError::Time {
        text: s.to_string(),
    })
}

/// The fixed-width digits at `b[at..at + n]` as a number.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let field = b.get(at..at + n)?;
    field.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn parse_time_parts(b: &[u8]) -> Option<OffsetDateTime> {
    // YYYY-MM-DDTHH-MM-SS
    for (at, sep) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b'-'), (16, b'-')] {
        if *b.get(at)? != sep {
            return None;
        }
    }
    let year = i32::try_from(digits(b, 0, 4)?).ok()?;
    let month = Month::try_from(u8::try_from(digits(b, 5, 2)?).ok()?).ok()?;
    let day = u8::try_from(digits(b, 8, 2)?).ok()?;
    let hour = u8::try_from(digits(b, 11, 2)?).ok()?;
    let minute = u8::try_from(digits(b, 14, 2)?).ok()?;
    let second = u8::try_from(digits(b, 17, 2)?).ok()?;
    let mut rest = b.get(19..)?;
    let mut nanos = 0u32;
    if let [b'.', tail @ ..] = rest {
        let n = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        nanos = digits(tail, 0, n)? * 10u32.pow(u32::try_from(9 - n).ok()?);
        rest = &tail[n..];
    }
    let offset = match rest {
        b"Z" => UtcOffset::UTC,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hh = i8::try_from(digits(&[*h1, *h2], 0, 2)?).ok()?;
            let mm = i8::try_from(digits(&[*m1, *m2], 0, 2)?).ok()?;
            if hh > 23 || mm > 59 {
                return None;
            }
            let s = if *sign == b'-' { -1 } else { 1 };
            UtcOffset::from_hms(s * hh, s * mm, 0).ok()?
        }
        _ => return None,
    };
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms_nano(hour, minute, second, nanos).ok()?;
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_offset(offset)
            .to_offset(UtcOffset::UTC),
    )
}

/// `<prefix>-<start>_<stop>.parquet`, e.g.
/// `dns_session_block-2024-09-26T18-14-00Z_2024-09-26T18-15-00Z.parquet`.
pub fn file_name(prefix: &str, start: OffsetDateTime, stop: OffsetDateTime) -> String {
    format!(
        "{prefix}-{}_{}{PARQUET_SUFFIX}",
        format_file_time(start),
        format_file_time(stop)
    )
}

/// The start and stop times of a file named by [`file_name`] with `prefix`.
///
/// # Errors
/// The name lacks `<prefix>-` or `.parquet`, does not hold exactly two
/// `_`-separated times, or a time is malformed.
pub fn parse_file_name(
    prefix: &str,
    name: &str,
) -> Result<(OffsetDateTime, OffsetDateTime), NameError> {
    let times = name
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .ok_or_else(|| NameError::Prefix {
            name: name.to_string(),
            prefix: prefix.to_string(),
        })?;
    let times = times
        .strip_suffix(PARQUET_SUFFIX)
        .ok_or_else(|| NameError::Suffix {
            name: name.to_string(),
        })?;
    let mut parts = times.split('_');
    let (Some(start), Some(stop), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NameError::Times {
            name: name.to_string(),
        });
    };
    let parse = |which: &'static str, text: &str| {
        parse_file_time(text).map_err(|_| NameError::NameTime {
            name: name.to_string(),
            which,
            text: text.to_string(),
        })
    };
    Ok((parse("start", start)?, parse("stop", stop)?))
}

/// A file written by [`write_parquet_atomic`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// The final path.
    pub path: PathBuf,
    /// The file size in bytes.
    pub bytes: u64,
    /// The number of rows in the file.
    pub rows: u64,
}

/// The Parquet writer settings for `schema`: Snappy on every column, row
/// groups of at most [`ROW_GROUP_ROWS`] rows, no embedded Arrow schema, and the root name from [`SCHEMA_ROOT_KEY`].
fn writer_options(schema: &SchemaRef) -> ArrowWriterOptions {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_size(ROW_GROUP_ROWS);
    // Session columns that are (nearly) unique per row: a dictionary would be
    // built and then abandoned page after page, and min/max statistics of raw
    // DNS messages help no reader. Other columns keep dictionaries and
    // statistics. (Setting a column a schema does not have changes nothing.)
    for column in ["response_message", "response_time"] {
        props = props.set_column_dictionary_enabled(ColumnPath::from(column), false);
    }
    props = props.set_column_statistics_enabled(
        ColumnPath::from("response_message"),
        EnabledStatistics::None,
    );
    let props = props.build();
    let options = ArrowWriterOptions::new()
        .with_properties(props)
        .with_skip_arrow_metadata(true);
    match schema.metadata().get(SCHEMA_ROOT_KEY) {
        Some(root) => options.with_schema_root(root.clone()),
        None => options,
    }
}

/// Write batches to `dir/name` durably.
///
/// Creates `dir` (mode 0750, recursively) if missing; writes `<name>.tmp`
/// with Snappy compression on every column and the Parquet root name from
/// `schema`'s [`SCHEMA_ROOT_KEY`] metadata; fsyncs it; renames it to `name`;
/// fsyncs the directory. A write, close or fsync error removes the
/// temporary file; a rename error keeps it for manual recovery. An existing
/// file is never replaced: if `name` is taken (two rotations within one
/// second give the same name), the file is named `<stem>.1.parquet`,
/// `<stem>.2.parquet`, … instead.
///
/// # Errors
/// See [`WriteError`]; each variant names the file or directory concerned.
pub fn write_parquet_atomic(
    dir: &Path,
    name: &str,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<WrittenFile, WriteError> {
    let mut file = StreamingFile::create(dir, name, schema)?;
    for batch in batches {
        if let Err(e) = file.write(batch) {
            file.abort();
            return Err(e);
        }
    }
    file.finish(name)
}

/// Rows per Parquet row group: bounds what the encoder buffers in memory
/// while a file is being streamed (a few tens of MB of encoded pages).
pub(crate) const ROW_GROUP_ROWS: usize = 256 * 1024;

/// The temporary name of a file under construction and its publication:
/// `dir/<tmp_name>.tmp` is created exclusively (never reusing a name a kept
/// `.tmp` holds), and once written and fsynced by its owner it is published
/// under its final name without replacing an existing file, then the
/// directory is fsynced.
#[derive(Debug)]
pub struct TmpFile {
    dir: PathBuf,
    tmp: PathBuf,
}

impl TmpFile {
    /// Create `dir/<tmp_name>.tmp` (and `dir`, mode 0750, if missing).
    ///
    /// # Errors
    /// [`WriteError::CreateDir`] or [`WriteError::Create`], naming the path.
    pub fn create(dir: &Path, tmp_name: &str) -> Result<(Self, File), WriteError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(|source| WriteError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        // Never reuse a name: a `.tmp` kept after a failed publish stays.
        let mut n = 0;
        loop {
            let tmp = if n == 0 {
                dir.join(format!("{tmp_name}{TMP_SUFFIX}"))
            } else {
                dir.join(format!("{tmp_name}.{n}{TMP_SUFFIX}"))
            };
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
            {
                Ok(f) => {
                    let dir = dir.to_path_buf();
                    return Ok((Self { dir, tmp }, f));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < MAX_NAME_SUFFIX => {
                    n += 1;
                }
                Err(source) => return Err(WriteError::Create { path: tmp, source }),
            }
        }
    }

    /// The temporary file's path.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Remove the temporary file (best effort; a leftover is reported at the
    /// next startup).
    pub fn remove(self) {
        let _ = fs::remove_file(&self.tmp);
    }

    /// Publish the written and fsynced file as `dir/name` (never replacing an
    /// existing file, see [`write_parquet_atomic`]) and fsync the directory.
    ///
    /// # Errors
    /// [`WriteError::Rename`] (the temporary file is kept) or
    /// [`WriteError::SyncDir`].
    pub fn publish(self, name: &str) -> Result<PathBuf, WriteError> {
        let path = publish(&self.tmp, &self.dir, name).map_err(|source| WriteError::Rename {
            from: self.tmp.clone(),
            to: self.dir.join(name),
            source,
        })?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| WriteError::SyncDir {
                dir: self.dir.clone(),
                path: path.clone(),
                source,
            })?;
        Ok(path)
    }
}

/// A Parquet file written from Arrow batches, then published atomically
/// under its final name ([`StreamingFile::finish`]). It is written as
/// `<tmp_name>.tmp` in its directory; until published it is invisible to
/// readers of `*.parquet`, and a crash leaves only the `.tmp` file (reported
/// at the next startup).
pub struct StreamingFile {
    tmp: TmpFile,
    writer: ArrowWriter<File>,
    rows: u64,
}

impl std::fmt::Debug for StreamingFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingFile")
            .field("tmp", &self.tmp)
            .field("rows", &self.rows)
            .finish()
    }
}

impl StreamingFile {
    /// Create `dir/<tmp_name>.tmp` (and `dir`, mode 0750, if missing).
    ///
    /// # Errors
    /// [`WriteError::CreateDir`], [`WriteError::Create`] or
    /// [`WriteError::Parquet`], naming the path.
    pub fn create(dir: &Path, tmp_name: &str, schema: SchemaRef) -> Result<Self, WriteError> {
        let (tmp, file) = TmpFile::create(dir, tmp_name)?;
        let options = writer_options(&schema);
        match ArrowWriter::try_new_with_options(file, schema, options) {
            Ok(writer) => Ok(Self {
                tmp,
                writer,
                rows: 0,
            }),
            Err(source) => {
                let path = tmp.path().to_path_buf();
                tmp.remove();
                Err(WriteError::Parquet { path, source })
            }
        }
    }

    /// Append a batch. After an error the file is unusable: call
    /// [`StreamingFile::abort`].
    ///
    /// # Errors
    /// [`WriteError::Parquet`] naming the temporary file.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), WriteError> {
        self.writer
            .write(batch)
            .map_err(|source| WriteError::Parquet {
                path: self.tmp.path().to_path_buf(),
                source,
            })?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Rows appended so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Remove the temporary file (best effort; a leftover is reported at the
    /// next startup).
    pub fn abort(self) {
        drop(self.writer);
        self.tmp.remove();
    }

    /// Write the footer, fsync, and publish as `dir/name` (never replacing an
    /// existing file, see [`write_parquet_atomic`]); fsync the directory.
    ///
    /// # Errors
    /// See [`WriteError`]: on a write or sync error the temporary file is
    /// removed; on a rename error it is kept.
    pub fn finish(mut self, name: &str) -> Result<WrittenFile, WriteError> {
        let path = self.tmp.path().to_path_buf();
        let finished = self
            .writer
            .finish()
            .map_err(|source| WriteError::Parquet {
                path: path.clone(),
                source,
            })
            .and_then(|_| {
                self.writer
                    .inner()
                    .sync_all()
                    .map_err(|source| WriteError::Sync { path, source })
            });
        let bytes = self.writer.bytes_written() as u64;
        let rows = self.rows;
        drop(self.writer);
        if let Err(e) = finished {
            self.tmp.remove();
            return Err(e);
        }
        let path = self.tmp.publish(name)?;
        Ok(WrittenFile { path, bytes, rows })
    }
}

/// Highest `.N` suffix tried when an interval's file name is taken.
const MAX_NAME_SUFFIX: u32 = 99;

/// Give `tmp` its final name without replacing an existing file: a hard link
/// (which fails if the name exists), then the tmp name is removed. Returns the
/// name used.
fn publish(tmp: &Path, dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    let stem = name.strip_suffix(".parquet").unwrap_or(name);
    for n in 0..=MAX_NAME_SUFFIX {
        let path = if n == 0 {
            dir.join(name)
        } else {
            dir.join(format!("{stem}.{n}.parquet"))
        };
        match fs::hard_link(tmp, &path) {
            Ok(()) => {
                // Published; a tmp name left behind is reported at startup.
                if let Err(e) = fs::remove_file(tmp) {
                    tracing::warn!(file = %tmp.display(), error = %e, "published, but cannot remove the temporary name");
                }
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            // A filesystem without hard links: check, then rename.
            Err(_) if !path.exists() => {
                fs::rename(tmp, &path)?;
                return Ok(path);
            }
            Err(_) => continue,
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "every file name for this interval is taken",
    ))
}

/// Leftover `*.tmp` files in `dir`, sorted by name (for the startup report).
/// A missing directory has none.
///
/// # Errors
/// The directory exists but cannot be listed.
pub fn leftover_tmp_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        let is_tmp = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.ends_with(TMP_SUFFIX));
        if is_tmp && entry.file_type()?.is_file() {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use time::macros::datetime;

    fn schema() -> SchemaRef {
        let meta = [(SCHEMA_ROOT_KEY.to_string(), "testData".to_string())].into();
        Arc::new(Schema::new_with_metadata(
            vec![Field::new("n", DataType::Int64, true)],
            meta,
        ))
    }

    fn batch(n: i64) -> RecordBatch {
        let values = Int64Array::from_iter_values(0..n);
        RecordBatch::try_new(schema(), vec![Arc::new(values)]).unwrap()
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn time_format_and_parse() {
        let t = datetime!(2026-05-28 12:00:00 +2);
        assert_eq!(format_file_time(t), "2026-05-28T10-00-00Z");
        assert_eq!(parse_file_time("2026-05-28T10-00-00Z").unwrap(), t);
        // Fractions are truncated, not rounded.
        let t = datetime!(2024-09-26 18:14:00.999_999_999 UTC);
        assert_eq!(format_file_time(t), "2024-09-26T18-14-00Z");
        assert_eq!(
            format_file_time(datetime!(0099-01-02 03:04:05 UTC)),
            "0099-01-02T03-04-05Z"
        );
        // What the reference's Go layout also accepts.
        assert_eq!(
            parse_file_time("2026-05-28T12-00-00+02:00").unwrap(),
            datetime!(2026-05-28 10:00:00 UTC)
        );
        assert_eq!(
            parse_file_time("2026-05-28T12-00-00.5-01:30").unwrap(),
            datetime!(2026-05-28 13:30:00.5 UTC)
        );
        for bad in [
            "",
            "bad",
            "2026-05-28T10:00:00Z",
            "2026-05-28T10-00-00",
            "2026-05-28T10-00-00z",
            "2026-05-28T10-00-00Zx",
            "2026-05-28 10-00-00Z",
            "2026-02-30T10-00-00Z",
            "2026-13-01T10-00-00Z",
            "2026-05-28T24-00-00Z",
            "2026-05-28T10-60-00Z",
            "2026-05-28T10-00-00.Z",
            "2026-05-28T10-00-00+24:00",
            "+026-05-28T10-00-00Z",
            "2026-5-28T10-00-00Z",
        ] {
            assert_eq!(
                parse_file_time(bad),
                Err(NameError::Time { text: bad.into() }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn file_names() {
        let (start, stop) = (
            datetime!(2024-09-26 18:14:00 UTC),
            datetime!(2024-09-26 18:15:00 UTC),
        );
        let name = file_name("dns_session_block", start, stop);
        assert_eq!(
            name,
            "dns_session_block-2024-09-26T18-14-00Z_2024-09-26T18-15-00Z.parquet"
        );
        assert_eq!(
            parse_file_name("dns_session_block", &name),
            Ok((start, stop))
        );
        let name = file_name("dns_histogram", datetime!(2026-05-28 12:00:00 +2), stop);
        assert_eq!(
            name,
            "dns_histogram-2026-05-28T10-00-00Z_2024-09-26T18-15-00Z.parquet"
        );
        assert_eq!(
            parse_file_name("dns_histogram", &name),
            Ok((datetime!(2026-05-28 10:00:00 UTC), stop))
        );
    }

    #[test]
    fn bad_file_names() {
        let p = "dns_histogram";
        let n = |s: &str| s.to_string();
        assert!(matches!(
            parse_file_name(p, "dns_histogram.parquet"),
            Err(NameError::Prefix { .. })
        ));
        assert_eq!(
            parse_file_name(p, "dns_histogram-2026-04-30T12-00-00Z.parquet"),
            Err(NameError::Times {
                name: n("dns_histogram-2026-04-30T12-00-00Z.parquet")
            })
        );
        assert_eq!(
            parse_file_name(p, "dns_histogram-bad_2026-04-30T12-00-00Z.parquet"),
            Err(NameError::NameTime {
                name: n("dns_histogram-bad_2026-04-30T12-00-00Z.parquet"),
                which: "start",
                text: n("bad"),
            })
        );
        assert_eq!(
            parse_file_name(p, "dns_histogram-2026-04-30T12-00-00Z_bad.parquet"),
            Err(NameError::NameTime {
                name: n("dns_histogram-2026-04-30T12-00-00Z_bad.parquet"),
                which: "stop",
                text: n("bad"),
            })
        );
        let good = "2026-04-30T12-00-00Z_2026-04-30T12-01-00Z";
        for bad in [
            format!("dns_session_block-{good}.parquet"),
            format!("dns_histogram{good}.parquet"),
            format!("dns_histogram-{good}.parquet.tmp"),
            format!("dns_histogram-{good}"),
            format!("dns_histogram-{good}_2026-04-30T12-02-00Z.parquet"),
        ] {
            assert!(parse_file_name(p, &bad).is_err(), "{bad}");
        }
        let e = parse_file_name(p, "dns_histogram-bad_x.parquet").unwrap_err();
        assert!(e.to_string().contains("dns_histogram-bad_x.parquet"), "{e}");
    }

    #[test]
    fn streaming_file_is_hidden_until_published_and_holds_every_row() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("sessions");
        let mut f = StreamingFile::create(&dir, "s-start.parquet", schema()).unwrap();
        // Three row groups' worth and a bit, streamed in batches.
        let n = ROW_GROUP_ROWS as i64;
        for _ in 0..3 {
            f.write(&batch(n)).unwrap();
        }
        f.write(&batch(7)).unwrap();
        assert_eq!(f.rows(), 3 * n as u64 + 7);
        // Only the temporary file exists while the interval is open.
        assert_eq!(names_in(&dir), ["s-start.parquet.tmp"]);
        let w = f.finish("s-start_stop.parquet").unwrap();
        assert_eq!(names_in(&dir), ["s-start_stop.parquet"]);
        assert_eq!(w.rows, 3 * n as u64 + 7);
        assert_eq!(w.bytes, fs::metadata(&w.path).unwrap().len());
        let file = fs::File::open(&w.path).unwrap();
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        assert_eq!(reader.parquet_schema().root_schema().name(), "testData");
        assert_eq!(reader.metadata().num_row_groups(), 4, "bounded row groups");
        let rows: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows as u64, w.rows);
        // An aborted file leaves nothing behind.
        let mut g = StreamingFile::create(&dir, "t.parquet", schema()).unwrap();
        g.write(&batch(3)).unwrap();
        g.abort();
        assert_eq!(names_in(&dir), ["s-start_stop.parquet"]);
    }

    #[test]
    fn atomic_write_creates_dirs_and_leaves_no_tmp() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("parquet/sessions");
        let w = write_parquet_atomic(&dir, "a.parquet", schema(), &[batch(10), batch(5)]).unwrap();
        assert_eq!(w.path, dir.join("a.parquet"));
        assert_eq!(w.rows, 15);
        assert_eq!(w.bytes, fs::metadata(&w.path).unwrap().len());
        assert_eq!(names_in(&dir), ["a.parquet"]);
        assert!(leftover_tmp_files(&dir).unwrap().is_empty());
        for d in [root.path().join("parquet"), dir.clone()] {
            let mode = fs::metadata(&d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode & !0o750, 0, "{} has mode {mode:o}", d.display());
        }
        // The root name comes from the schema metadata; the file is readable.
        let file = fs::File::open(&w.path).unwrap();
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        assert_eq!(reader.parquet_schema().root_schema().name(), "testData");
        let rows: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, 15);
        // Writing the same name again keeps the first file.
        let w = write_parquet_atomic(&dir, "a.parquet", schema(), &[batch(1)]).unwrap();
        assert_eq!(w.rows, 1);
        assert_eq!(w.path, dir.join("a.1.parquet"));
        assert_eq!(names_in(&dir), ["a.1.parquet", "a.parquet"]);
        assert!(leftover_tmp_files(&dir).unwrap().is_empty());
    }

    #[test]
    fn default_root_name_without_metadata() {
        let root = tempfile::tempdir().unwrap();
        let plain = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
        let b =
            RecordBatch::try_new(plain.clone(), vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
        let w = write_parquet_atomic(root.path(), "p.parquet", plain, &[b]).unwrap();
        let file = fs::File::open(&w.path).unwrap();
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        assert_eq!(reader.parquet_schema().root_schema().name(), "arrow_schema");
    }

    #[test]
    fn parent_is_a_file() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("regular");
        fs::write(&file, b"x").unwrap();
        for dir in [file.join("sub"), file.clone()] {
            let e = write_parquet_atomic(&dir, "a.parquet", schema(), &[batch(1)]).unwrap_err();
            assert!(
                matches!(&e, WriteError::CreateDir { path, .. } if *path == dir),
                "{e:?}"
            );
            assert_eq!(e.path(), dir);
            assert!(e.to_string().contains(&dir.display().to_string()), "{e}");
        }
        assert_eq!(fs::read(&file).unwrap(), b"x");
    }

    #[test]
    fn rename_error_keeps_tmp() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        // Every name the file could take is a directory.
        fs::create_dir(dir.join("a.parquet")).unwrap();
        for n in 1..=MAX_NAME_SUFFIX {
            fs::create_dir(dir.join(format!("a.{n}.parquet"))).unwrap();
        }
        let e = write_parquet_atomic(dir, "a.parquet", schema(), &[batch(3)]).unwrap_err();
        let tmp = dir.join("a.parquet.tmp");
        match &e {
            WriteError::Rename { from, to, .. } => {
                assert_eq!(*from, tmp);
                assert_eq!(*to, dir.join("a.parquet"));
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("a.parquet.tmp"), "{e}");
        assert!(fs::metadata(&tmp).unwrap().len() > 0);
        assert_eq!(leftover_tmp_files(dir).unwrap(), [tmp]);
    }

    #[test]
    fn write_error_removes_tmp() {
        let root = tempfile::tempdir().unwrap();
        let other = Arc::new(Schema::new(vec![Field::new("n", DataType::Utf8, true)]));
        let wrong =
            RecordBatch::try_new(other, vec![Arc::new(StringArray::from(vec!["x"]))]).unwrap();
        let e = write_parquet_atomic(root.path(), "a.parquet", schema(), &[batch(2), wrong])
            .unwrap_err();
        assert!(
            matches!(&e, WriteError::Parquet { path, .. } if *path == root.path().join("a.parquet.tmp")),
            "{e:?}"
        );
        assert!(names_in(root.path()).is_empty());
    }

    #[test]
    fn leftovers() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        assert!(leftover_tmp_files(&dir.join("missing")).unwrap().is_empty());
        fs::write(dir.join("b.parquet.tmp"), b"").unwrap();
        fs::write(dir.join("a.parquet.tmp"), b"").unwrap();
        fs::write(dir.join("c.parquet"), b"").unwrap();
        fs::create_dir(dir.join("d.tmp")).unwrap();
        assert_eq!(
            leftover_tmp_files(dir).unwrap(),
            [dir.join("a.parquet.tmp"), dir.join("b.parquet.tmp")]
        );
        assert!(leftover_tmp_files(&dir.join("c.parquet")).is_err());
    }
}
