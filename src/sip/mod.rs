//! SIP value helpers: source addresses and their table keys, scanner
//! fingerprints. Plain functions over bytes; no shared state.

pub mod addr;
pub mod fingerprint;
