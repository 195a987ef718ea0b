//! Domain names an operator lists as phone-contexts (`phone_context_domains`):
//! RFC 3966 lets a local number's phone-context be a domain, which says
//! nothing a proxy can read about the number, so a domain context is refused
//! (the `dial` module) unless listed here with the global prefix it stands
//! for (`pbx.example.com=+44`: `tel:2071234567;phone-context=pbx.example.com`
//! dials +442071234567).

use crate::config::parse::ConfigError;

/// Most domains listed.
const MAX_DOMAINS: usize = 256;

/// Listed domains (lower case) and their digits (no `+`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainContexts(Vec<(Vec<u8>, Vec<u8>)>);

fn invalid(v: &str, why: &str) -> ConfigError {
    ConfigError::Invalid {
        param: "phone_context_domains",
        msg: format!("\"{v}\": {why}"),
    }
}

fn domain_ok(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl DomainContexts {
    /// `domain=+digits` comma separated; empty: none.
    pub fn parse(v: &str) -> Result<DomainContexts, ConfigError> {
        let mut list: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (domain, prefix) = item
                .split_once('=')
                .ok_or_else(|| invalid(v, "expected domain=+digits, comma separated"))?;
            let domain = domain.trim().to_ascii_lowercase();
            if !domain_ok(&domain) {
                return Err(invalid(v, &format!("bad domain name {domain}")));
            }
            let digits = prefix
                .trim()
                .strip_prefix('+')
                .filter(|d| (1..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| invalid(v, &format!("{domain}: expected + and 1 to 15 digits")))?;
            if list.iter().any(|(d, _)| d == domain.as_bytes()) {
                return Err(invalid(v, &format!("{domain} listed twice")));
            }
            if list.len() == MAX_DOMAINS {
                return Err(invalid(v, &format!("more than {MAX_DOMAINS} domains")));
            }
            list.push((domain.into_bytes(), digits.as_bytes().to_vec()));
        }
        Ok(DomainContexts(list))
    }

    /// The digits a listed domain stands for (names compared case-insensitively).
    pub fn digits(&self, domain: &[u8]) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(d, _)| d.eq_ignore_ascii_case(domain))
            .map(|(_, p)| p.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_domains() {
        let c = DomainContexts::parse(" PBX.example.com=+44, branch.example.net=+4930 ").unwrap();
        assert_eq!(c.digits(b"pbx.EXAMPLE.com"), Some(&b"44"[..]));
        assert_eq!(c.digits(b"branch.example.net"), Some(&b"4930"[..]));
        assert_eq!(c.digits(b"example.com"), None);
        assert_eq!(DomainContexts::parse("").unwrap(), DomainContexts::default());
        for bad in [
            "example.com",
            "example.com=44",
            "a..b=+1",
            "x=+1,x=+2",
            "x=+1234567890123456",
            "ex ample=+1",
        ] {
            let e = DomainContexts::parse(bad).unwrap_err().to_string();
            assert!(e.contains("phone_context_domains"), "{e}");
        }
    }
}
