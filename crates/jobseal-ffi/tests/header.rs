//! The checked-in `include/jobseal.h` is what cbindgen makes from
//! `src/lib.rs` with `cbindgen.toml` today.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

#[test]
fn the_checked_in_header_is_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).unwrap();
    let mut fresh = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen could not read src/lib.rs")
        .write(&mut fresh);
    let path = dir.join("include/jobseal.h");
    if std::env::var_os("JOBSEAL_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let checked_in = std::fs::read(&path).unwrap_or_default();
    assert!(
        checked_in == fresh,
        "crates/jobseal-ffi/include/jobseal.h is stale (or missing): the C API in src/lib.rs \
         changed. Refresh it with\n    JOBSEAL_UPDATE_HEADER=1 cargo test -p jobseal-ffi --test header\n\
         and commit the result."
    );
}
