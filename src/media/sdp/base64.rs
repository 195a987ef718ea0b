//! Strict base64 (RFC 4648 section 4, standard alphabet) decoding into a
//! caller-provided fixed buffer: no allocation, no panic.
//!
//! Accepted: the standard alphabet `A-Z a-z 0-9 + /`, with complete padding
//! (`=` or `==` making the length a multiple of 4) or with no padding at all
//! (FreeSWITCH strips the padding of SRTP keys by default). Refused: any
//! other byte (whitespace, the URL-safe `-` and `_`, a `=` not at the end),
//! partial padding, a length that cannot be base64 (4n+1), and output that
//! does not fit the buffer. Non-zero trailing bits are ignored (RFC 4648
//! section 3.5 lets a decoder accept them).

use core::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum B64Error {
    Empty,
    /// A byte outside the alphabet (or a `=` before the end).
    InvalidChar(u8),
    /// Padding that is not one or two `=` completing a 4-character group.
    BadPadding,
    /// 4n+1 characters: no byte string encodes to that.
    BadLength,
    /// More bytes than the output buffer holds.
    TooLong,
}

impl fmt::Display for B64Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            B64Error::Empty => f.write_str("empty base64"),
            B64Error::InvalidChar(c) if c.is_ascii_graphic() => {
                write!(f, "invalid base64 character '{}'", *c as char)
            }
            B64Error::InvalidChar(c) => write!(f, "invalid base64 byte 0x{c:02x}"),
            B64Error::BadPadding => f.write_str("bad base64 padding"),
            B64Error::BadLength => f.write_str("truncated base64"),
            B64Error::TooLong => f.write_str("base64 key too long"),
        }
    }
}

fn value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes `input` into `out`; returns the number of bytes written.
pub fn decode(input: &[u8], out: &mut [u8]) -> Result<usize, B64Error> {
    if input.is_empty() {
        return Err(B64Error::Empty);
    }
    let pad = input.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return Err(B64Error::BadPadding);
    }
    let data = input.get(..input.len() - pad).unwrap_or_default();
    let (mut acc, mut bits, mut n) = (0u32, 0u32, 0usize);
    for &c in data {
        let v = value(c).ok_or(B64Error::InvalidChar(c))?;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            let slot = out.get_mut(n).ok_or(B64Error::TooLong)?;
            *slot = (acc >> bits) as u8;
            n += 1;
            acc &= (1 << bits) - 1;
        }
    }
    if data.is_empty() || (pad > 0 && !input.len().is_multiple_of(4)) {
        return Err(B64Error::BadPadding);
    }
    if data.len() % 4 == 1 {
        return Err(B64Error::BadLength);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Result<Vec<u8>, B64Error> {
        let mut buf = [0u8; 64];
        decode(s.as_bytes(), &mut buf).map(|n| buf[..n].to_vec())
    }

    #[test]
    fn rfc4648_vectors() {
        assert_eq!(dec("Zg=="), Ok(b"f".to_vec()));
        assert_eq!(dec("Zm8="), Ok(b"fo".to_vec()));
        assert_eq!(dec("Zm9v"), Ok(b"foo".to_vec()));
        assert_eq!(dec("Zm9vYg=="), Ok(b"foob".to_vec()));
        assert_eq!(dec("Zm9vYmE="), Ok(b"fooba".to_vec()));
        assert_eq!(dec("Zm9vYmFy"), Ok(b"foobar".to_vec()));
    }

    #[test]
    fn unpadded_accepted() {
        assert_eq!(dec("Zg"), Ok(b"f".to_vec()));
        assert_eq!(dec("Zm8"), Ok(b"fo".to_vec()));
        assert_eq!(dec("Zm9vYmE"), Ok(b"fooba".to_vec()));
    }

    #[test]
    fn all_alphabet() {
        let s = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        assert_eq!(dec(s).map(|v| v.len()), Ok(48));
    }

    #[test]
    fn bad_padding() {
        assert_eq!(dec("Zg="), Err(B64Error::BadPadding));
        assert_eq!(dec("Z==="), Err(B64Error::BadPadding));
        assert_eq!(dec("===="), Err(B64Error::BadPadding));
        assert_eq!(dec("="), Err(B64Error::BadPadding));
        assert_eq!(dec("Zm9vY==="), Err(B64Error::BadPadding));
    }

    #[test]
    fn bad_chars() {
        assert_eq!(dec("Zm9v Yg=="), Err(B64Error::InvalidChar(b' ')));
        assert_eq!(dec("Zm=vYg=="), Err(B64Error::InvalidChar(b'=')));
        assert_eq!(dec("Zm9-"), Err(B64Error::InvalidChar(b'-')));
        assert_eq!(dec("Zm9_"), Err(B64Error::InvalidChar(b'_')));
        assert_eq!(dec("Zm9\u{e9}"), Err(B64Error::InvalidChar(0xc3)));
        let mut buf = [0u8; 8];
        assert_eq!(decode(b"Zm\x009", &mut buf), Err(B64Error::InvalidChar(0)));
    }

    #[test]
    fn bad_length_and_overflow() {
        assert_eq!(dec(""), Err(B64Error::Empty));
        assert_eq!(dec("Z"), Err(B64Error::BadLength));
        assert_eq!(dec("Zm9vY"), Err(B64Error::BadLength));
        let mut small = [0u8; 2];
        assert_eq!(decode(b"Zm9v", &mut small), Err(B64Error::TooLong));
        let mut exact = [0u8; 3];
        assert_eq!(decode(b"Zm9v", &mut exact), Ok(3));
    }
}
