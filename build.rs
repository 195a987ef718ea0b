// include/sipguard.h is generated from the Rust declarations of the C ABI
// (src/ffi.rs, src/guess_ffi.rs, src/fraud/ffi.rs) by cbindgen, and
// committed. tests/header.rs, not this script, generates it and fails when
// the committed header differs (`SIPGUARD_BLESS=1 cargo test --test header`
// writes it), so a build needs no cbindgen and the Kamailio build only reads
// the committed file. This script only reruns the build when the header is
// edited.
fn main() {
    println!("cargo:rerun-if-changed=include/sipguard.h");
}
