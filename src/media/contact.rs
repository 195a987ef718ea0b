//! Does a REGISTER's Contact ask for TLS?
//!
//! A Contact header value holds one or more contacts separated by commas
//! (outside quotes and angle brackets), or `*`. A contact asks for TLS when
//! its URI is `sips:` or carries the URI parameter `transport=tls`.
//! Following RFC 3261, parameters after a URI written without `<...>` are
//! header parameters, not URI parameters: `sip:a@h;transport=tls` does not
//! ask for TLS, `<sip:a@h;transport=tls>` does. No allocation.

/// True when every contact in `value` asks for TLS ("*" counts as yes).
pub fn wants_tls(value: &[u8]) -> bool {
    let mut any = false;
    for contact in split_contacts(value) {
        let contact = trim(contact);
        if contact.is_empty() {
            continue;
        }
        any = true;
        if contact != b"*" && !uri_wants_tls(uri_of(contact)) {
            return false;
        }
    }
    any
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

/// Contacts separated by commas that are outside quotes and `<...>`.
fn split_contacts(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = value;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (mut quoted, mut bracketed, mut escaped) = (false, false, false);
        let mut cut = rest.len();
        for (i, &c) in rest.iter().enumerate() {
            match c {
                _ if escaped => escaped = false,
                b'\\' if quoted => escaped = true,
                b'"' if !bracketed => quoted = !quoted,
                b'<' if !quoted => bracketed = true,
                b'>' if !quoted => bracketed = false,
                b',' if !quoted && !bracketed => {
                    cut = i;
                    break;
                }
                _ => {}
            }
        }
        let item = &rest[..cut];
        rest = rest.get(cut + 1..).unwrap_or(&[]);
        Some(item)
    })
}

/// The URI of one contact: inside `<...>`, or up to the first `;`.
fn uri_of(contact: &[u8]) -> &[u8] {
    let (mut quoted, mut escaped) = (false, false);
    for (i, &c) in contact.iter().enumerate() {
        match c {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'<' if !quoted => {
                let inner = &contact[i + 1..];
                let end = inner.iter().position(|&c| c == b'>').unwrap_or(inner.len());
                return &inner[..end];
            }
            _ => {}
        }
    }
    let end = contact.iter().position(|&c| c == b';').unwrap_or(contact.len());
    &contact[..end]
}

fn uri_wants_tls(uri: &[u8]) -> bool {
    let uri = trim(uri);
    if uri.len() >= 5 && uri[..5].eq_ignore_ascii_case(b"sips:") {
        return true;
    }
    // URI parameters come after the host part and before any `?headers`.
    // With `transport` given twice the last one counts, as in Kamailio's
    // URI parser, which is what a registrar would store.
    let end = uri.iter().position(|&c| c == b'?').unwrap_or(uri.len());
    let transport = uri[..end]
        .split(|&c| c == b';')
        .skip(1)
        .filter_map(|param| {
            let param = trim(param);
            let name = param.get(..10)?;
            name.eq_ignore_ascii_case(b"transport=").then(|| &param[10..])
        })
        .last();
    // TLS, or WebSocket over TLS.
    transport.is_some_and(|t| t.eq_ignore_ascii_case(b"tls") || t.eq_ignore_ascii_case(b"wss"))
}

#[cfg(test)]
mod tests {
    use super::wants_tls;

    #[test]
    fn tls_contacts() {
        for yes in [
            "<sips:alice@192.0.2.1:5061>",
            "<sip:alice@192.0.2.1:5061;transport=TLS>;expires=3600",
            "\"Alice, the first\" <sips:alice@h>",
            "<sips:a@h>, <sip:b@h;transport=tls;lr>",
            "<sip:a@h;transport=WSS>",
            "<sip:a@h;transport=udp;transport=tls>",
            "sips:alice@h;expires=60",
            "*",
        ] {
            assert!(wants_tls(yes.as_bytes()), "{yes}");
        }
    }

    #[test]
    fn non_tls_contacts() {
        for no in [
            "<sip:alice@192.0.2.1:5060>",
            "<sip:alice@h;transport=udp>",
            // A header parameter, not a URI parameter (RFC 3261 20.10).
            "sip:alice@h;transport=tls",
            "<sips:a@h>, <sip:b@h>",
            "<sip:a@h;transport=tlsx>",
            "<sip:a@h?x=;transport=tls>",
            "\"<sips:fake@h>\" <sip:a@h>",
            "\"a\\\" <sips:x@y>\" <sip:b@h>",
            "<sip:a@h;transport=tls;transport=udp>",
            "",
            "   ",
        ] {
            assert!(!wants_tls(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn hostile_input_is_just_no() {
        assert!(!wants_tls(&[0xff, 0, b'<', b'<']));
        assert!(!wants_tls(b"<<<<<"));
        assert!(!wants_tls(b"\"unterminated <sips:x@y>"));
        assert!(!wants_tls(&b",".repeat(10_000)));
    }
}
