//! Parameters. [`parse`] holds the value parsers every capability shares
//! (the substrate); each capability owns its parameter struct and its `set`
//! (`crate::guess::config`, `crate::fraud::config`), and the whole set is
//! [`crate::engine::config::Config`].

pub mod parse;

pub use parse::{check_writable, parse_duration, parse_rate, ConfigError, Rate};
