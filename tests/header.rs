//! `include/sipguard.h` is generated: cbindgen (`cbindgen.toml`) writes it
//! from the Rust declarations of the C ABI in [`SOURCES`] — every
//! `#[repr(C)]` struct and enum, `pub const` and `#[no_mangle] extern "C"`
//! function there, with their `///` comments. This test generates it again
//! and fails when the committed header differs, so a changed prototype,
//! struct field or enum value cannot reach the shim unnoticed. After changing
//! the ABI, regenerate the header with
//!
//!     SIPGUARD_BLESS=1 cargo test --test header
//!
//! and commit it with the change. The Kamailio build only reads the
//! committed header: it needs neither cargo nor cbindgen.

use std::path::{Path, PathBuf};

/// The file that declares the C ABI. cbindgen follows its `mod` items into
/// `src/ffi/flood.rs`, `media.rs`, `guess.rs` and `fraud.rs`, in the order
/// they are declared, which is the order the header follows.
const SOURCES: [&str; 1] = ["src/ffi/mod.rs"];

fn generate(root: &Path) -> String {
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml"))
        .unwrap_or_else(|e| panic!("cbindgen.toml: {e}"));
    let mut builder = cbindgen::Builder::new().with_config(config);
    for src in SOURCES {
        builder = builder.with_src(root.join(src));
    }
    let bindings = builder.generate().unwrap_or_else(|e| panic!("cbindgen: {e}"));
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("cbindgen writes UTF-8")
}

#[test]
fn header_is_generated_from_the_rust_declarations() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let header = root.join("include/sipguard.h");
    let fresh = generate(&root);
    if std::env::var_os("SIPGUARD_BLESS").is_some() {
        std::fs::write(&header, &fresh).unwrap_or_else(|e| panic!("{}: {e}", header.display()));
        return;
    }
    let committed = std::fs::read_to_string(&header).unwrap_or_else(|e| panic!("{}: {e}", header.display()));
    if committed == fresh {
        return;
    }
    // Leave the generated one next to the build products for a diff.
    let new = root.join("target/sipguard.h.generated");
    let _ = std::fs::create_dir_all(root.join("target"));
    let _ = std::fs::write(&new, &fresh);
    let (line, (old, gen)) = committed
        .lines()
        .chain(std::iter::repeat(""))
        .zip(fresh.lines().chain(std::iter::repeat("")))
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .expect("the texts differ");
    panic!(
        "include/sipguard.h is not what the Rust declarations generate \
         (first difference at line {}):\n  committed: {old}\n  generated: {gen}\n\
         Generated header: {}\n\
         If the ABI change is intended, regenerate it with\n  \
         SIPGUARD_BLESS=1 cargo test --test header\n\
         and commit include/sipguard.h with the change.",
        line + 1,
        new.display()
    );
}
