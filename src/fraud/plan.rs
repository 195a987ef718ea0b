//! Numbering-plan data: the type of an E.164 number, from libphonenumber's
//! metadata (the `phonenumber` crate), as a rule class: premium rate,
//! shared cost, toll free, UAN, VoIP, personal number, mobile, fixed line;
//! the international networks +881, +882 and +883 (satellite and the like)
//! as `satellite` whatever their type.
//!
//! The dial check asks only when no operator prefix rule matches the number
//! (the rules override the plan data). Unlike the rest of the dial check
//! this allocates (the crate parses into owned values and compiles its
//! patterns on first use, keeping them in a per-process cache): once per
//! INVITE, never per packet. [`load`] reads the metadata before the fork,
//! so the processes share its pages.

use super::dial::country_code_len;
use super::rules::Class;
use phonenumber::metadata::DATABASE;
use phonenumber::Type;

/// Load the metadata now (at start, before the fork).
pub fn load() {
    let _ = DATABASE.by_code(&1);
    super::lengths::load();
}

/// The class of `e164` (digits, no `+`) by its number type; None when the
/// data gives none (unknown, invalid, pager, voicemail, ...).
pub fn class(e164: &[u8]) -> Option<Class> {
    if !e164.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let cc = country_code_len(e164)?;
    if matches!(&e164[..cc], b"881" | b"882" | b"883") {
        return Some(Class::Satellite);
    }
    let text = format!("+{}", std::str::from_utf8(e164).ok()?);
    let number = phonenumber::parse(None, text).ok()?;
    Some(match number.number_type(&DATABASE) {
        Type::PremiumRate => Class::Premium,
        Type::SharedCost => Class::SharedCost,
        Type::TollFree => Class::TollFree,
        Type::Uan => Class::Uan,
        Type::Voip => Class::Voip,
        Type::PersonalNumber => Class::Personal,
        Type::Mobile => Class::Mobile,
        Type::FixedLine | Type::FixedLineOrMobile => Class::Fixed,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_from_the_plan_data() {
        for (n, c) in [
            ("449098790000", Some(Class::Premium)),
            ("4990012345678", Some(Class::Premium)),
            ("442071234567", Some(Class::Fixed)),
            ("447911123456", Some(Class::Mobile)),
            ("4915112345678", Some(Class::Mobile)),
            ("18005551234", Some(Class::TollFree)),
            ("498001234567", Some(Class::TollFree)),
            ("881649301234", Some(Class::Satellite)),
            ("88212345678", Some(Class::Satellite)),
            ("4412", None),
            ("44x", None),
        ] {
            assert_eq!(class(n.as_bytes()), c, "{n}");
        }
    }
}
