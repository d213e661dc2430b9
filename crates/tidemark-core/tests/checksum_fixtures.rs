//! LF, CRLF and BOM copies of one migration hash the same (the fixtures'
//! bytes are kept by tests/fixtures/.gitattributes).
#![allow(clippy::unwrap_used)]

use tidemark_core::source::checksum;

#[test]
fn lf_crlf_and_bom_files_hash_the_same() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checksum");
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let (lf, crlf, bom) = (read("lf.sql"), read("crlf.sql"), read("bom.sql"));
    // The fixtures really differ on disk (git did not normalize them).
    assert!(!lf.contains(&b'\r'));
    assert!(crlf.windows(2).any(|w| w == b"\r\n"));
    assert!(bom.starts_with(b"\xEF\xBB\xBF"));
    assert_eq!(checksum(&lf), checksum(&crlf));
    assert_eq!(checksum(&lf), checksum(&bom));
    // Pinned: this value is what databases already store.
    assert_eq!(
        checksum(&lf),
        checksum(b"CREATE TABLE users (\n  id uuid PRIMARY KEY,\n  email text NOT NULL\n);\n")
    );
}
