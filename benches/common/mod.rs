//! Inputs shared by the benches.

/// The data frames of the bundled Unbound capture (`testdata/sample.fstrm`).
pub fn capture_frames() -> Vec<bytes::Bytes> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sample.fstrm");
    let file = std::fs::File::open(path).expect("testdata/sample.fstrm");
    edm::input::framestream::FileReader::new(std::io::BufReader::new(file), 1 << 20)
        .expect("capture")
        .collect::<Result<Vec<_>, _>>()
        .expect("frames")
}
