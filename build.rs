// The C header is hand-written and is the contract with the shim;
// tests/header.rs checks it against the Rust side. Rebuild when it changes.
fn main() {
    println!("cargo:rerun-if-changed=include/sipguard.h");
}
