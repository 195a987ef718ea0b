//! What a URI's text says about its user part before anyone parses it.

/// True when the host's URI parser finds no user part in `uri`: a `sip:`
/// or `sips:` URI (the scheme in any case) with no `@` anywhere. That
/// parser sets the user part of such a URI only at an `@` (without one,
/// what precedes the host is the host); every other form (`tel:`, whose
/// number is its user, `urn:`, anything unexpected) answers false and is
/// parsed by the host. A host asks this to spare parsing a URI whose user
/// part would be empty; tests/e2e/test_target_user.py checks the answer
/// against Kamailio's own parser, form by form.
pub fn lacks_user(uri: &[u8]) -> bool {
    let rest = match uri {
        [s, i, p, b':', rest @ ..] if eq3(*s, *i, *p) => rest,
        [s, i, p, ps, b':', rest @ ..] if eq3(*s, *i, *p) && ps.eq_ignore_ascii_case(&b's') => rest,
        _ => return false,
    };
    // libc's memchr: on a few dozen bytes, cheaper than the slice's search
    // and than a vector search that dispatches per call
    // SAFETY: reads rest.len() bytes of rest.
    unsafe { libc::memchr(rest.as_ptr().cast(), i32::from(b'@'), rest.len()) }.is_null()
}

fn eq3(s: u8, i: u8, p: u8) -> bool {
    s.eq_ignore_ascii_case(&b's') && i.eq_ignore_ascii_case(&b'i') && p.eq_ignore_ascii_case(&b'p')
}

#[cfg(test)]
mod tests {
    use super::lacks_user;

    #[test]
    fn sip_and_sips_without_at_lack_a_user() {
        for u in [
            &b"sip:example.org"[..],
            b"SIP:127.0.0.1:5060",
            b"sips:[::1]:5061;transport=tls",
            b"SiPs:host;user=phone",
            b"sip:",
        ] {
            assert!(lacks_user(u), "{}", String::from_utf8_lossy(u));
        }
    }

    #[test]
    fn anything_else_is_left_to_the_parser() {
        for u in [
            &b"sip:1001@example.org"[..],
            b"sip:host;x=a@b",
            b"sip:@host",
            b"tel:+12025550100",
            b"tels:123",
            b"urn:service:sos",
            b" sip:host",
            b"<sip:host>",
            b"sipx:host",
            b"si:host",
            b"",
        ] {
            assert!(!lacks_user(u), "{}", String::from_utf8_lossy(u));
        }
    }
}
