//! Flood defence: per-source rate limiting (GCRA), escalating bans, prefix
//! bans, and the state file that keeps bans across a restart.

pub mod ban;
pub mod config;
pub mod gcra;
pub mod region;
pub mod replica;
pub mod slot;
pub mod state;
pub mod table;
