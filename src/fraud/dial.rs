//! What a request URI dials: one canonical E.164 number (country code and
//! national number, digits only, at most 15), or a refusal when the URI
//! can be read more than one way. Nothing is guessed.
//!
//! The host parses the URI (Kamailio's `parse_sip_msg_uri`) and hands over
//! what it found ([`DialUri`]): the scheme, the user part, whether the
//! `user=phone` parameter is present, and the telephone-subscriber
//! parameters it split off (for `tel:` URIs, and for `user=phone` sip URIs
//! when Kamailio's `phone2tel` is on, its default). Only when the host left
//! the parameters inside the user part (a `user=phone` URI with `phone2tel`
//! off) does this module read them from the user's raw bytes, RFC 3966
//! syntax: `number *( ";" name [ "=" value ] )`.
//!
//! The number:
//! - visual separators `-` `.` `(` `)` and spaces are dropped; an escape
//!   (`%20`, `%2D`, ...) is allowed only when it stands for one of them: an
//!   escape that would change the digits (`%31`, `%2B`) is refused;
//! - `+digits` is global: the digits are the E.164 number; a
//!   `phone-context` beside it is refused (RFC 3966: only local numbers
//!   have one);
//! - a local number with `phone-context=+<digits>` is the context's digits
//!   followed by the number's (RFC 3966 section 5.1.5); a domain name as
//!   phone-context says nothing about the digits and is refused, unless the
//!   operator lists it with the prefix it stands for
//!   (`phone_context_domains`, [`super::phone_context`]);
//! - a local number without phone-context is read by the dial plan: an
//!   international access prefix (`intl_prefixes`) stripped, or the
//!   national prefix replaced by `home_country_code`; any other local
//!   number is refused (it is not known which country it is in);
//! - `(0)` right after the country code of an international number is the
//!   trunk prefix, which is not dialled: dropped. A parenthesised group
//!   starting with 0 anywhere else is refused;
//! - the country code must be one the ITU assigned, and the whole at most
//!   15 digits, the national number of a length the country's numbers may
//!   have (libphonenumber's data, [`super::lengths`]).
//!
//! Allocates nothing.

use super::config::FraudConfig;

/// Longest E.164 number.
pub const E164_MAX: usize = 15;

/// The URI scheme as the host parsed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
}

/// A request URI, parsed by the host.
#[derive(Debug, Clone, Copy)]
pub struct DialUri<'a> {
    pub scheme: Scheme,
    /// The user part (for `tel:`, the number), still escaped.
    pub user: &'a [u8],
    /// A sip/sips URI with the parameter `user=phone`.
    pub user_phone: bool,
    /// Telephone-subscriber parameters the host split off the number
    /// (`phone-context=...;ext=...`), empty when none.
    pub tel_params: &'a [u8],
}

/// A canonical E.164 number: digits, no `+`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct E164 {
    buf: [u8; E164_MAX],
    len: u8,
}

impl E164 {
    pub fn digits(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

impl std::fmt::Debug for E164 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "+{}", String::from_utf8_lossy(self.digits()))
    }
}

/// Why a URI dials no one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadDial {
    Empty,
    NotDigit,
    /// An escape that is not a visual separator.
    Escape,
    TooLong,
    /// Parameters in the user part of a URI without `user=phone`.
    UserParams,
    /// A domain name as phone-context.
    DomainContext,
    BadContext,
    /// Two phone-context parameters, or one beside a global number.
    ContextConflict,
    /// A local number, no phone-context, no dial plan to read it by.
    NotGlobal,
    /// "(0..." where it is no trunk prefix after a country code.
    Parenthesis,
    UnknownCountry,
    /// The national number has no length the country's numbers may have.
    Length,
}

impl BadDial {
    pub fn why(self) -> &'static str {
        match self {
            BadDial::Empty => "bad number: no digits",
            BadDial::NotDigit => "bad number: not a digit",
            BadDial::Escape => "bad number: an escape that is no visual separator",
            BadDial::TooLong => "bad number: longer than E.164 (15 digits)",
            BadDial::UserParams => "bad number: parameters in the user part without user=phone",
            BadDial::DomainContext => "bad number: phone-context is a domain",
            BadDial::BadContext => "bad number: bad phone-context",
            BadDial::ContextConflict => "bad number: phone-context twice or beside a global number",
            BadDial::NotGlobal => "bad number: local number without a country",
            BadDial::Parenthesis => "bad number: (0 that is no trunk prefix after a country code",
            BadDial::UnknownCountry => "bad number: no such country code",
            BadDial::Length => "bad number: not a valid length for its country",
        }
    }
}

/// Country codes the ITU assigned (E.164 list), by length.
const CC1: &[u8] = b"17";
const CC2: &[u16] = &[
    20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54, 55, 56, 57, 58,
    60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98,
];
const CC3: &[u16] = &[
    211, 212, 213, 216, 218, 220, 221, 222, 223, 224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 235,
    236, 237, 238, 239, 240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253, 254, 255, 256,
    257, 258, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 290, 291, 297, 298, 299, 350, 351, 352, 353,
    354, 355, 356, 357, 358, 359, 370, 371, 372, 373, 374, 375, 376, 377, 378, 379, 380, 381, 382, 383, 385,
    386, 387, 389, 420, 421, 423, 500, 501, 502, 503, 504, 505, 506, 507, 508, 509, 590, 591, 592, 593, 594,
    595, 596, 597, 598, 599, 670, 672, 673, 674, 675, 676, 677, 678, 679, 680, 681, 682, 683, 685, 686, 687,
    688, 689, 690, 691, 692, 800, 808, 850, 852, 853, 855, 856, 870, 878, 880, 881, 882, 883, 886, 888, 960,
    961, 962, 963, 964, 965, 966, 967, 968, 970, 971, 972, 973, 974, 975, 976, 977, 979, 991, 992, 993, 994,
    995, 996, 998,
];

fn num(d: &[u8]) -> u16 {
    d.iter().fold(0, |n, &b| n * 10 + (b - b'0') as u16)
}

/// Length of the country code `digits` starts with (codes are prefix-free).
pub fn country_code_len(digits: &[u8]) -> Option<usize> {
    if digits.first().is_some_and(|d| CC1.contains(d)) {
        return Some(1);
    }
    if digits.len() >= 2 && CC2.binary_search(&num(&digits[..2])).is_ok() {
        return Some(2);
    }
    if digits.len() >= 3 && CC3.binary_search(&num(&digits[..3])).is_ok() {
        return Some(3);
    }
    None
}

/// Digits in a fixed buffer, with where a "(0" group started.
struct Digits {
    buf: [u8; 32],
    len: usize,
    plus: bool,
    /// Digit offsets where a parenthesised group starts with 0, and whether
    /// that group is exactly "(0)". At most 4 remembered; more is refused.
    zero_groups: [(usize, bool); 4],
    groups: usize,
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|v| v as u8)
}

fn visual(b: u8) -> bool {
    matches!(b, b'-' | b'.' | b'(' | b')' | b' ')
}

/// The bytes of `s`, escapes decoded; an escape must be a visual separator.
fn decoded(s: &[u8]) -> impl Iterator<Item = Result<u8, BadDial>> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let &b = s.get(i)?;
        if b != b'%' {
            i += 1;
            return Some(Ok(b));
        }
        let v = match (
            s.get(i + 1).copied().and_then(hex),
            s.get(i + 2).copied().and_then(hex),
        ) {
            (Some(h), Some(l)) => h << 4 | l,
            _ => {
                i = s.len();
                return Some(Err(BadDial::Escape));
            }
        };
        i += 3;
        if visual(v) {
            Some(Ok(v))
        } else {
            i = s.len();
            Some(Err(BadDial::Escape))
        }
    })
}

/// Read a number: digits, visual separators, one leading '+'.
fn digits(s: &[u8]) -> Result<Digits, BadDial> {
    let mut d = Digits {
        buf: [0; 32],
        len: 0,
        plus: false,
        zero_groups: [(0, false); 4],
        groups: 0,
    };
    let mut seen = false;
    // Inside parentheses: (digit offset at '(', digits in the group so far).
    let mut open: Option<(usize, usize)> = None;
    for b in decoded(s) {
        let b = b?;
        match b {
            b'0'..=b'9' => {
                if d.len == d.buf.len() {
                    return Err(BadDial::TooLong);
                }
                if let Some((at, n)) = &mut open {
                    if *n == 0 && b == b'0' {
                        if d.groups == d.zero_groups.len() {
                            return Err(BadDial::Parenthesis);
                        }
                        d.zero_groups[d.groups] = (*at, false);
                        d.groups += 1;
                    }
                    *n += 1;
                }
                d.buf[d.len] = b;
                d.len += 1;
                seen = true;
            }
            b'+' if !seen => {
                d.plus = true;
                seen = true;
            }
            b'(' => {
                if open.is_some() {
                    return Err(BadDial::Parenthesis);
                }
                open = Some((d.len, 0));
            }
            b')' => {
                let Some((at, n)) = open.take() else {
                    return Err(BadDial::Parenthesis);
                };
                if n == 1 && d.groups > 0 && d.zero_groups[d.groups - 1].0 == at {
                    d.zero_groups[d.groups - 1].1 = true;
                }
            }
            b if visual(b) => {}
            _ => return Err(BadDial::NotDigit),
        }
    }
    if open.is_some() {
        return Err(BadDial::Parenthesis);
    }
    if d.len == 0 {
        return Err(BadDial::Empty);
    }
    Ok(d)
}

/// The value of the one phone-context parameter in `params` (`;`-separated,
/// with or without a leading `;`), if any. Names are case-insensitive.
fn phone_context<'a>(params: &[&'a [u8]]) -> Result<Option<&'a [u8]>, BadDial> {
    let mut found = None;
    for p in params.iter().flat_map(|p| p.split(|&b| b == b';')) {
        let (name, value) = match p.iter().position(|&b| b == b'=') {
            Some(i) => (&p[..i], &p[i + 1..]),
            None => (p, &p[p.len()..]),
        };
        if name.eq_ignore_ascii_case(b"phone-context") {
            if found.is_some() {
                return Err(BadDial::ContextConflict);
            }
            found = Some(value);
        }
    }
    Ok(found)
}

/// The E.164 number `uri` dials under the dial plan of `cfg`.
pub fn canonical(uri: &DialUri<'_>, cfg: &FraudConfig) -> Result<E164, BadDial> {
    // The host split the parameters off a tel: number and (phone2tel) a
    // user=phone one; else they are still in the user part.
    let (number, user_params) = match uri.user.iter().position(|&b| b == b';') {
        Some(i) => (&uri.user[..i], &uri.user[i + 1..]),
        None => (uri.user, &uri.user[uri.user.len()..]),
    };
    if !user_params.is_empty() && uri.scheme != Scheme::Tel && !uri.user_phone {
        return Err(BadDial::UserParams);
    }
    let context = phone_context(&[user_params, uri.tel_params])?;
    let d = digits(number)?;
    let all = &d.buf[..d.len];
    // (offset in `all` where the national part starts, context digits)
    let mut ctx = Digits {
        buf: [0; 32],
        len: 0,
        plus: false,
        zero_groups: [(0, false); 4],
        groups: 0,
    };
    let start = match context {
        Some(_) if d.plus => return Err(BadDial::ContextConflict),
        Some(c) => {
            if c.is_empty() {
                return Err(BadDial::BadContext);
            }
            if c.first() != Some(&b'+') {
                let listed = cfg.phone_contexts.digits(c).ok_or(BadDial::DomainContext)?;
                ctx.buf[..listed.len()].copy_from_slice(listed);
                ctx.len = listed.len();
            } else {
                ctx = digits(c).map_err(|e| match e {
                    BadDial::TooLong | BadDial::Escape => e,
                    _ => BadDial::BadContext,
                })?;
                if !ctx.plus || ctx.groups > 0 {
                    return Err(BadDial::BadContext);
                }
            }
            0
        }
        None if d.plus => 0,
        None => {
            if let Some(p) = cfg.intl_prefixes.iter().find(|p| all.starts_with(p)) {
                p.len()
            } else if !cfg.home_country_code.is_empty()
                && !cfg.national_prefix.is_empty()
                && all.starts_with(&cfg.national_prefix)
            {
                ctx.buf[..cfg.home_country_code.len()].copy_from_slice(&cfg.home_country_code);
                ctx.len = cfg.home_country_code.len();
                cfg.national_prefix.len()
            } else {
                return Err(BadDial::NotGlobal);
            }
        }
    };
    let mut out = E164 {
        buf: [0; E164_MAX],
        len: 0,
    };
    let mut push = |b: u8| {
        if out.len as usize == E164_MAX {
            return Err(BadDial::TooLong);
        }
        out.buf[out.len as usize] = b;
        out.len += 1;
        Ok(())
    };
    for &b in &ctx.buf[..ctx.len] {
        push(b)?;
    }
    // The country code, once the number is in international form: for a
    // context or a home country it comes from there.
    let cc_from_number = ctx.len == 0;
    let cc_end = if cc_from_number {
        start + country_code_len(&all[start..]).ok_or(BadDial::UnknownCountry)?
    } else {
        start
    };
    let mut gi = 0;
    let mut i = start;
    while i < all.len() {
        if gi < d.groups && d.zero_groups[gi].0 <= i {
            let (at, exact) = d.zero_groups[gi];
            gi += 1;
            if !(at == i && exact && cc_from_number && at == cc_end) {
                return Err(BadDial::Parenthesis);
            }
            i += 1; // the trunk prefix "(0)": not dialled
            continue;
        }
        push(all[i])?;
        i += 1;
    }
    if gi < d.groups {
        return Err(BadDial::Parenthesis);
    }
    let cc = country_code_len(out.digits()).ok_or(BadDial::UnknownCountry)?;
    if out.len as usize <= cc {
        return Err(BadDial::Empty);
    }
    if !super::lengths::valid(num(&out.digits()[..cc]), out.len as usize - cc) {
        return Err(BadDial::Length);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> FraudConfig {
        let mut c = FraudConfig::default();
        c.set("intl_prefixes", "00,011").unwrap();
        c
    }

    fn uri(s: &str) -> (Scheme, String, bool, String) {
        // A small stand-in for the host's parser, enough for the tests:
        // scheme, user, user=phone, parameters split off like phone2tel.
        let (scheme, rest) = s.split_once(':').unwrap();
        let scheme = match scheme {
            "sip" => Scheme::Sip,
            "sips" => Scheme::Sips,
            _ => Scheme::Tel,
        };
        if scheme == Scheme::Tel {
            let (n, p) = rest.split_once(';').unwrap_or((rest, ""));
            return (scheme, n.into(), false, p.into());
        }
        let (user, hostpart) = rest.rsplit_once('@').unwrap();
        let phone = hostpart.contains(";user=phone");
        if phone {
            let (n, p) = user.split_once(';').unwrap_or((user, ""));
            return (scheme, n.into(), true, p.into());
        }
        (scheme, user.into(), false, String::new())
    }

    fn e(s: &str, c: &FraudConfig) -> Result<String, BadDial> {
        let (scheme, user, user_phone, params) = uri(s);
        let u = DialUri {
            scheme,
            user: user.as_bytes(),
            user_phone,
            tel_params: params.as_bytes(),
        };
        canonical(&u, c).map(|n| String::from_utf8(n.digits().to_vec()).unwrap())
    }

    #[test]
    fn the_forms_of_one_number() {
        let c = cfg();
        for s in [
            "sip:+442071234567@gw",
            "sips:+442071234567@gw",
            "sip:00442071234567@gw",
            "sip:011442071234567@gw",
            "sip:+44-20-7123-4567@gw;user=phone",
            "sip:+44%2020%207123%204567@gw",
            "sip:+44(0)2071234567@gw",
            "sip:0044-(0)20-7123-4567@gw",
            "sip:+44.20.7123.4567@gw;user=phone",
            "tel:+44-20-7123-4567",
            "tel:2071234567;phone-context=+44",
            "tel:71234567;phone-context=+44-20",
            "sip:2071234567;phone-context=+44@gw;user=phone",
        ] {
            assert_eq!(e(s, &c), Ok("442071234567".into()), "{s}");
        }
    }

    #[test]
    fn the_issue_forms() {
        let c = cfg();
        assert_eq!(
            e("sip:49301234;phone-context=+8816@host;user=phone", &c).unwrap(),
            "881649301234"
        );
        assert_eq!(e("tel:49301234;phone-context=+8816", &c).unwrap(), "881649301234");
        assert_eq!(e("sip:+44(0)9098790000@h", &c).unwrap(), "449098790000");
        assert_eq!(e("sip:0044-(0)909-879-0000@h", &c).unwrap(), "449098790000");
        assert_eq!(e("sip:+49(0)9001234567@h", &c).unwrap(), "499001234567");
    }

    #[test]
    fn phone_context_left_in_the_user_part_is_read() {
        // phone2tel off: Kamailio leaves the parameters in the user part.
        let u = DialUri {
            scheme: Scheme::Sip,
            user: b"49301234;PHONE-CONTEXT=+88-16;ext=12",
            user_phone: true,
            tel_params: b"",
        };
        assert_eq!(canonical(&u, &cfg()).unwrap().digits(), b"881649301234");
        let u = DialUri {
            user_phone: false,
            ..u
        };
        assert_eq!(canonical(&u, &cfg()), Err(BadDial::UserParams));
    }

    #[test]
    fn a_home_country() {
        let mut c = cfg();
        c.set("home_country_code", "1").unwrap();
        c.set("national_prefix", "1").unwrap();
        assert_eq!(e("sip:12125550100@gw", &c).unwrap(), "12125550100");
        assert_eq!(e("sip:1(212)555-0100@gw", &c).unwrap(), "12125550100");
        assert_eq!(e("sip:2125550100@gw", &c), Err(BadDial::NotGlobal));
        assert_eq!(e("sip:911@gw", &c), Err(BadDial::NotGlobal));
    }

    #[test]
    fn refused_not_guessed() {
        let c = cfg();
        for (s, why) in [
            ("tel:49301234;phone-context=example.com", BadDial::DomainContext),
            (
                "sip:49301234;phone-context=pbx.example@h;user=phone",
                BadDial::DomainContext,
            ),
            ("tel:49301234;phone-context=", BadDial::BadContext),
            ("tel:49301234;phone-context=+", BadDial::BadContext),
            ("tel:49301234;phone-context=+88a", BadDial::BadContext),
            ("tel:+4930;phone-context=+49", BadDial::ContextConflict),
            (
                "tel:4930;phone-context=+49;phone-context=+44",
                BadDial::ContextConflict,
            ),
            ("sip:+44%31234567@h", BadDial::Escape),
            ("sip:%2B442071234567@h", BadDial::Escape),
            ("sip:+44%2@h", BadDial::Escape),
            ("sip:+44%zz1@h", BadDial::Escape),
            ("sip:2071234567@h", BadDial::NotGlobal),
            ("sip:+1234567890123456@h", BadDial::TooLong),
            ("sip:+2591234567@h", BadDial::UnknownCountry),
            ("sip:+0442071234567@h", BadDial::UnknownCountry),
            ("sip:+44@h", BadDial::Empty),
            ("sip:+@h", BadDial::Empty),
            ("sip:alice@h", BadDial::NotDigit),
            ("sip:*98@h", BadDial::NotDigit),
            ("sip:+44*98@h", BadDial::NotDigit),
            ("sip:+4(0)42071234567@h", BadDial::Parenthesis),
            ("sip:+44 20 (0)7123 4567@h", BadDial::Parenthesis),
            ("sip:+44(020)71234567@h", BadDial::Parenthesis),
            ("sip:+44((0))2071234567@h", BadDial::Parenthesis),
            ("sip:+44(0)(0)2071234567@h", BadDial::Parenthesis),
            ("sip:+44(02071234567@h", BadDial::Parenthesis),
            ("sip:+44)2071234567@h", BadDial::Parenthesis),
            ("tel:(0)2071234567;phone-context=+44", BadDial::Parenthesis),
            ("sip:00(0)442071234567@h", BadDial::UnknownCountry),
            ("sip:(0)0442071234567@h", BadDial::Parenthesis),
            ("sip:1234;x=1@h", BadDial::UserParams),
        ] {
            assert_eq!(e(s, &c), Err(why), "{s}");
        }
        // 15 digits is the most.
        assert_eq!(e("sip:+491234567890123@h", &c).unwrap(), "491234567890123");
        // Parentheses not starting with 0 are separators.
        assert_eq!(e("sip:+1 (212) 555-0100@h", &c).unwrap(), "12125550100");
    }

    #[test]
    fn a_length_no_number_of_the_country_has_is_refused() {
        let c = cfg();
        for s in [
            "sip:+449001@h",
            "sip:+4420712345678@h",
            "sip:+1212555010@h",
            "tel:9001;phone-context=+44",
        ] {
            assert_eq!(e(s, &c), Err(BadDial::Length), "{s}");
        }
        assert_eq!(e("sip:+12125550100@h", &c).unwrap(), "12125550100");
        assert_eq!(e("sip:+449098790000@h", &c).unwrap(), "449098790000");
    }

    #[test]
    fn a_listed_domain_phone_context_stands_for_its_prefix() {
        let mut c = cfg();
        c.set(
            "phone_context_domains",
            "pbx.example.com=+44, berlin.example.net=+4930",
        )
        .unwrap();
        assert_eq!(
            e("tel:2071234567;phone-context=PBX.example.com", &c).unwrap(),
            "442071234567"
        );
        assert_eq!(
            e("sip:2071234567;phone-context=pbx.example.com@h;user=phone", &c).unwrap(),
            "442071234567"
        );
        assert_eq!(
            e("tel:12345678;phone-context=berlin.example.net", &c).unwrap(),
            "493012345678"
        );
        // Anything else is still refused: another domain, an escaped one, a
        // global number beside it, a length the country does not have.
        for (s, why) in [
            ("tel:2071234567;phone-context=example.com", BadDial::DomainContext),
            (
                "tel:2071234567;phone-context=pbx.example.co%6D",
                BadDial::DomainContext,
            ),
            (
                "tel:+2071234567;phone-context=pbx.example.com",
                BadDial::ContextConflict,
            ),
            ("tel:9001;phone-context=pbx.example.com", BadDial::Length),
        ] {
            assert_eq!(e(s, &c), Err(why), "{s}");
        }
    }

    #[test]
    fn country_codes() {
        assert_eq!(country_code_len(b"1212"), Some(1));
        assert_eq!(country_code_len(b"4420"), Some(2));
        assert_eq!(country_code_len(b"8816"), Some(3));
        assert_eq!(country_code_len(b"2591"), None);
        assert_eq!(country_code_len(b"28"), None);
        assert!(CC2.windows(2).all(|w| w[0] < w[1]) && CC3.windows(2).all(|w| w[0] < w[1]));
    }
}
