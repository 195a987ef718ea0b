//! A dialled number (the user part of a request URI) in the one form the
//! rules match: international numbers as country code + number, without
//! `+` or an access prefix, whichever way they were dialled; separators gone.

use super::config::FraudConfig;

/// Longest number kept; E.164 allows 15 digits, access prefixes add a few.
pub const MAX_DIGITS: usize = 32;

/// A normalized number in a fixed buffer.
#[derive(Clone, Copy)]
pub struct Number {
    buf: [u8; MAX_DIGITS],
    len: usize,
    pub international: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadNumber {
    Empty,
    NotDigit,
    TooLong,
}

impl BadNumber {
    pub fn why(self) -> &'static str {
        match self {
            BadNumber::Empty => "bad number: no digits",
            BadNumber::NotDigit => "bad number: not a digit",
            BadNumber::TooLong => "bad number: too long",
        }
    }
}

impl Number {
    pub fn digits(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn push(&mut self, d: &[u8]) -> Result<(), BadNumber> {
        let end = self.len + d.len();
        if end > MAX_DIGITS {
            return Err(BadNumber::TooLong);
        }
        self.buf[self.len..end].copy_from_slice(d);
        self.len = end;
        Ok(())
    }
}

fn separator(b: u8) -> bool {
    matches!(b, b' ' | b'-' | b'.' | b'(' | b')' | b'/')
}

/// Normalize `dialled` per the plan in `cfg`. Allocates nothing.
pub fn normalize(dialled: &[u8], cfg: &FraudConfig) -> Result<Number, BadNumber> {
    // Digits only, into a scratch buffer; one leading '+' allowed.
    let mut raw = Number {
        buf: [0; MAX_DIGITS],
        len: 0,
        international: false,
    };
    let mut plus = false;
    for (i, &b) in dialled.iter().enumerate() {
        match b {
            b'0'..=b'9' => raw.push(&[b])?,
            b'+' if raw.len == 0 && !plus && dialled[..i].iter().all(|&c| separator(c)) => plus = true,
            b if separator(b) => {}
            _ => return Err(BadNumber::NotDigit),
        }
    }
    let d = raw.digits();
    if d.is_empty() {
        return Err(BadNumber::Empty);
    }
    let mut out = Number {
        buf: [0; MAX_DIGITS],
        len: 0,
        international: true,
    };
    if plus {
        out.push(d)?;
    } else if let Some(p) = cfg.intl_prefixes.iter().find(|p| d.starts_with(p)) {
        out.push(&d[p.len()..])?;
    } else if !cfg.home_country_code.is_empty()
        && !cfg.national_prefix.is_empty()
        && d.starts_with(&cfg.national_prefix)
    {
        out.push(&cfg.home_country_code)?;
        out.push(&d[cfg.national_prefix.len()..])?;
    } else {
        out.international = false;
        out.push(d)?;
    }
    if out.len == 0 {
        return Err(BadNumber::Empty);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str, cfg: &FraudConfig) -> Result<String, BadNumber> {
        normalize(s.as_bytes(), cfg).map(|n| String::from_utf8(n.digits().to_vec()).unwrap())
    }

    #[test]
    fn every_international_form_is_one_number() {
        let c = FraudConfig::default();
        for s in [
            "+442071234567",
            "00442071234567",
            "011442071234567",
            "+44 (20) 7123-4567",
        ] {
            assert_eq!(n(s, &c).unwrap(), "442071234567", "{s}");
        }
        assert_eq!(n("+1 (212) 555-0100", &c).unwrap(), "12125550100");
        // No home country: national numbers are matched as dialled.
        assert_eq!(n("02071234567", &c).unwrap(), "02071234567");
        assert!(!normalize(b"02071234567", &c).unwrap().international);
    }

    #[test]
    fn national_form_with_a_home_country() {
        let mut c = FraudConfig::default();
        c.set("home_country_code", "44").unwrap();
        c.set("intl_prefixes", "00").unwrap();
        assert_eq!(n("0207 123 4567", &c).unwrap(), "442071234567");
        assert_eq!(n("0033123456789", &c).unwrap(), "33123456789");
        assert_eq!(n("112", &c).unwrap(), "112");
    }

    #[test]
    fn bad_numbers() {
        let c = FraudConfig::default();
        assert_eq!(n("", &c), Err(BadNumber::Empty));
        assert_eq!(n("+", &c), Err(BadNumber::Empty));
        assert_eq!(n("00", &c), Err(BadNumber::Empty));
        assert_eq!(n("alice", &c), Err(BadNumber::NotDigit));
        assert_eq!(n("12+3", &c), Err(BadNumber::NotDigit));
        assert_eq!(n("*98", &c), Err(BadNumber::NotDigit));
        assert_eq!(n(&"1".repeat(33), &c), Err(BadNumber::TooLong));
    }
}
