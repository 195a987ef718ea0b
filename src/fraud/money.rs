//! Money as whole ten-thousandths of the currency unit: rates and spend add
//! up exactly, with no float drifting over many calls.

use std::fmt;

pub const SCALE: u64 = 10_000;
const DECIMALS: usize = 4;
/// A million units: far above any real rate or threshold, far below overflow.
const MAX: u64 = 1_000_000 * SCALE;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Money(pub u64);

/// "1", "0.02", "1.5000" → Money; at most 4 decimals.
pub fn parse_money(v: &str) -> Result<Money, String> {
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !(frac.is_empty() || digits(frac)) || v.ends_with('.') {
        return Err("expected an amount like 12 or 0.0250".into());
    }
    if frac.len() > DECIMALS {
        return Err(format!("at most {DECIMALS} decimals"));
    }
    let w: u64 = whole.parse().map_err(|_| "amount too large".to_string())?;
    let f: u64 = format!("{frac:0<4}").parse().unwrap_or(0);
    w.checked_mul(SCALE)
        .and_then(|x| x.checked_add(f))
        .filter(|x| *x <= MAX)
        .map(Money)
        .ok_or_else(|| format!("above {} units", MAX / SCALE))
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:04}", self.0 / SCALE, self.0 % SCALE)
    }
}

/// Cost of `ms` milliseconds at `rate` per minute (rounded down).
pub fn cost(rate: u64, ms: u64) -> u64 {
    ((rate as u128 * ms as u128) / 60_000).min(u64::MAX as u128) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_show() {
        assert_eq!(parse_money("1").unwrap(), Money(10_000));
        assert_eq!(parse_money("0.02").unwrap(), Money(200));
        assert_eq!(parse_money("1.2345").unwrap().to_string(), "1.2345");
        for bad in ["", ".5", "1.", "1.23456", "x", "-1", "1e3", "2000000"] {
            assert!(parse_money(bad).is_err(), "{bad}");
        }
        // One minute at 1.5/min, then 90 s.
        assert_eq!(cost(15_000, 60_000), 15_000);
        assert_eq!(cost(15_000, 90_000), 22_500);
    }
}
