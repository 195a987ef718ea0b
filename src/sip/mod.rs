//! SIP value helpers: source addresses and their table keys, scanner
//! fingerprints, what a URI's text says of its user part. Plain functions
//! over bytes; no shared state.

pub mod addr;
pub mod fingerprint;
pub mod uri;
