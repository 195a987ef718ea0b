//! `cargo fuzz run fraud_number`: dialled numbers (the request URI's user
//! part, attacker input) through `fraud::number::normalize`, and request
//! URIs as the host parsed them through `fraud::dial::canonical`.
//!
//! With the first byte's bit 0x40 set (top bit clear), the URI reader: the
//! next byte chooses the scheme (its value mod 3) and user=phone (bit 4),
//! then `user NUL tel_params`, under the preset plan of the first byte.
//! Properties: no panic; a canonical number is 2..15 ASCII digits starting
//! with an assigned country code; `+<digits>` read again (a sip user, and a
//! tel: number) gives the same number.
//!
//! Input: a first byte choosing the dial plan, then the number. With the
//! first byte's top bit set, the dial plan itself comes from the input:
//! `intl_prefixes NUL home_country_code NUL national_prefix NUL number`,
//! through `FraudConfig::set` (a plan it refuses is skipped).
//!
//! Properties:
//! - a normalized number is 1..32 ASCII digits, nothing else (no '+', no
//!   separator);
//! - it is what a plain model of the documented plan gives: separators
//!   dropped, one leading '+' or else the first (longest) matching access
//!   prefix stripped, or else the national prefix replaced by the home
//!   country code; the errors (no digits, not a digit, too long) too;
//! - separators do not matter: the number without them gives the same;
//! - normalizing is stable: an international result given back as
//!   `+digits`, a national one given back as is, gives itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipguard::fraud::config::FraudConfig;
use sipguard::fraud::dial::{canonical, country_code_len, DialUri, Scheme, E164_MAX};
use sipguard::fraud::number::{normalize, BadNumber, Number, MAX_DIGITS};

fn separator(b: u8) -> bool {
    matches!(b, b' ' | b'-' | b'.' | b'(' | b')' | b'/')
}

fn plan(i: u8) -> FraudConfig {
    let mut c = FraudConfig::default();
    let set = |c: &mut FraudConfig, n: &str, v: &str| c.set(n, v).expect("preset plan");
    match i % 4 {
        0 => {}
        1 => {
            set(&mut c, "home_country_code", "44");
            set(&mut c, "intl_prefixes", "00");
        }
        2 => {
            set(&mut c, "home_country_code", "1");
            set(&mut c, "national_prefix", "1");
            set(&mut c, "intl_prefixes", "011");
        }
        _ => {
            set(&mut c, "home_country_code", "7");
            set(&mut c, "national_prefix", "8");
            set(&mut c, "intl_prefixes", "810,8,00");
        }
    }
    c
}

/// The documented plan, written plainly; (digits, international).
fn model(dialled: &[u8], cfg: &FraudConfig) -> Result<(Vec<u8>, bool), BadNumber> {
    let mut digits = Vec::new();
    let mut plus = false;
    let mut seen_other = false;
    for &b in dialled {
        if b.is_ascii_digit() {
            digits.push(b);
            if digits.len() > MAX_DIGITS {
                return Err(BadNumber::TooLong);
            }
            seen_other = true;
        } else if b == b'+' && !plus && !seen_other {
            plus = true;
            seen_other = true;
        } else if !separator(b) {
            return Err(BadNumber::NotDigit);
        }
    }
    if digits.is_empty() {
        return Err(BadNumber::Empty);
    }
    let (out, intl) = if plus {
        (digits, true)
    } else if let Some(p) = cfg.intl_prefixes.iter().find(|p| digits.starts_with(p)) {
        (digits[p.len()..].to_vec(), true)
    } else if !cfg.home_country_code.is_empty()
        && !cfg.national_prefix.is_empty()
        && digits.starts_with(&cfg.national_prefix)
    {
        let mut v = cfg.home_country_code.clone();
        v.extend_from_slice(&digits[cfg.national_prefix.len()..]);
        (v, true)
    } else {
        (digits, false)
    };
    if out.len() > MAX_DIGITS {
        return Err(BadNumber::TooLong);
    }
    if out.is_empty() {
        return Err(BadNumber::Empty);
    }
    Ok((out, intl))
}

fn view(r: &Result<Number, BadNumber>) -> Result<(Vec<u8>, bool), BadNumber> {
    r.as_ref()
        .map(|n| (n.digits().to_vec(), n.international))
        .map_err(|e| *e)
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    if sel & 0xc0 == 0x40 {
        uri(plan(sel), rest);
        return;
    }
    let (cfg, dialled) = if sel & 0x80 != 0 {
        let mut parts = rest.splitn(4, |&b| b == 0);
        let (Some(intl), Some(cc), Some(np), Some(number)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        let mut c = FraudConfig::default();
        for (name, v) in [
            ("intl_prefixes", intl),
            ("home_country_code", cc),
            ("national_prefix", np),
        ] {
            let Ok(v) = std::str::from_utf8(v) else { return };
            if c.set(name, v).is_err() {
                return;
            }
        }
        (c, number)
    } else {
        (plan(sel), rest)
    };
    let got = normalize(dialled, &cfg);
    if let Ok(n) = &got {
        let d = n.digits();
        assert!(
            !d.is_empty() && d.len() <= MAX_DIGITS && d.iter().all(u8::is_ascii_digit),
            "{dialled:?} -> {d:?}"
        );
    }
    assert_eq!(
        view(&got),
        model(dialled, &cfg),
        "{dialled:?} with {:?}",
        cfg.intl_prefixes
    );

    // Separators do not matter.
    let bare: Vec<u8> = dialled.iter().copied().filter(|&b| !separator(b)).collect();
    assert_eq!(
        view(&normalize(&bare, &cfg)),
        view(&got),
        "{dialled:?} without separators"
    );

    // Stable: the result dialled again gives itself.
    if let Ok(n) = &got {
        let again = if n.international {
            [b"+", n.digits()].concat()
        } else {
            n.digits().to_vec()
        };
        assert_eq!(
            view(&normalize(&again, &cfg)),
            view(&got),
            "{dialled:?} again as {again:?}"
        );
    }
});

fn uri(cfg: FraudConfig, data: &[u8]) {
    let Some((&b, rest)) = data.split_first() else {
        return;
    };
    let scheme = [Scheme::Sip, Scheme::Sips, Scheme::Tel][b as usize % 3];
    let (user, tel_params) = match rest.iter().position(|&c| c == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &rest[rest.len()..]),
    };
    let u = DialUri {
        scheme,
        user,
        user_phone: b & 4 != 0,
        tel_params,
    };
    let Ok(n) = canonical(&u, &cfg) else {
        return;
    };
    let d = n.digits();
    assert!(
        d.len() >= 2 && d.len() <= E164_MAX && d.iter().all(u8::is_ascii_digit),
        "{u:?} -> {d:?}"
    );
    assert!(country_code_len(d).is_some_and(|cc| cc < d.len()), "{u:?} -> {d:?}");
    let again = [b"+", d].concat();
    for scheme in [Scheme::Sip, Scheme::Tel] {
        let u2 = DialUri {
            scheme,
            user: &again,
            user_phone: false,
            tel_params: b"",
        };
        assert_eq!(canonical(&u2, &cfg), Ok(n), "{u:?} again as {again:?}");
    }
}
