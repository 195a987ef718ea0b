//! Which lengths a country's national numbers may have, from
//! libphonenumber's metadata (the `phonenumber` crate): the union of the
//! possible lengths of every number type of every region sharing the
//! country code. A number of another length is no number of that country
//! and is refused, not guessed (the `dial` module).
//!
//! The table (a bit per length, per country code) is built once per
//! process, before the fork when [`load`] is called at start; a lookup
//! allocates nothing.

use phonenumber::metadata::DATABASE;
use std::sync::OnceLock;

/// Country codes are at most 3 digits.
const CODES: usize = 1000;

fn table() -> &'static [u32; CODES] {
    static TABLE: OnceLock<Box<[u32; CODES]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Box::new([0u32; CODES]);
        for (cc, mask) in t.iter_mut().enumerate() {
            for m in DATABASE.by_code(&(cc as u16)).unwrap_or_default() {
                let d = m.descriptors();
                let types = [
                    Some(d.general()),
                    d.fixed_line(),
                    d.mobile(),
                    d.toll_free(),
                    d.premium_rate(),
                    d.shared_cost(),
                    d.personal_number(),
                    d.voip(),
                    d.pager(),
                    d.uan(),
                    d.voicemail(),
                ];
                for len in types.into_iter().flatten().flat_map(|t| t.possible_length()) {
                    if *len < 32 {
                        *mask |= 1 << len;
                    }
                }
            }
        }
        t
    })
}

/// Build the table now (at start, before the fork).
pub fn load() {
    let _ = table();
}

/// Whether country code `cc` has national numbers of `len` digits; true
/// when the data knows no lengths for it.
pub fn valid(cc: u16, len: usize) -> bool {
    let mask = table().get(cc as usize).copied().unwrap_or(0);
    mask == 0 || (len < 32 && mask & 1 << len != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_by_country() {
        assert!(valid(44, 10) && valid(44, 9) && !valid(44, 4) && !valid(44, 11));
        assert!(valid(1, 10) && !valid(1, 9) && !valid(1, 11));
        assert!(valid(33, 9) && !valid(33, 10));
        assert!(valid(881, 9) && !valid(881, 8));
        assert!(valid(882, 8) && !valid(882, 6));
        // Country codes the data knows no numbers of are not judged.
        assert!(valid(999, 3));
    }
}
