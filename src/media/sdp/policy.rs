//! The policy: which SDES crypto suites are acceptable, whether DTLS-SRTP
//! counts as encrypted, whether "optimistic" SRTP (RTP/AVP with a=crypto)
//! is tolerated. Parsed once from a spec string at startup.

use core::fmt;

/// SDES crypto suites this checker knows (RFC 4568, RFC 6188, RFC 7714).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
    F8_128HmacSha1_80,
    Aes192CmHmacSha1_80,
    Aes192CmHmacSha1_32,
    Aes256CmHmacSha1_80,
    Aes256CmHmacSha1_32,
    AeadAes128Gcm,
    AeadAes256Gcm,
}

impl Suite {
    pub const ALL: [Suite; 9] = [
        Suite::AesCm128HmacSha1_80,
        Suite::AesCm128HmacSha1_32,
        Suite::F8_128HmacSha1_80,
        Suite::Aes192CmHmacSha1_80,
        Suite::Aes192CmHmacSha1_32,
        Suite::Aes256CmHmacSha1_80,
        Suite::Aes256CmHmacSha1_32,
        Suite::AeadAes128Gcm,
        Suite::AeadAes256Gcm,
    ];

    /// The name used in `a=crypto` and in the policy spec.
    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::F8_128HmacSha1_80 => "F8_128_HMAC_SHA1_80",
            Suite::Aes192CmHmacSha1_80 => "AES_192_CM_HMAC_SHA1_80",
            Suite::Aes192CmHmacSha1_32 => "AES_192_CM_HMAC_SHA1_32",
            Suite::Aes256CmHmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            Suite::Aes256CmHmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Suite::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// Length in bytes of the inline key||salt: master key + master salt.
    pub fn key_salt_len(self) -> usize {
        match self {
            // RFC 4568: 128-bit key, 112-bit salt.
            Suite::AesCm128HmacSha1_80 | Suite::AesCm128HmacSha1_32 | Suite::F8_128HmacSha1_80 => 16 + 14,
            // RFC 6188: 192/256-bit key, 112-bit salt.
            Suite::Aes192CmHmacSha1_80 | Suite::Aes192CmHmacSha1_32 => 24 + 14,
            Suite::Aes256CmHmacSha1_80 | Suite::Aes256CmHmacSha1_32 => 32 + 14,
            // RFC 7714 section 12: 128/256-bit key, 96-bit salt.
            Suite::AeadAes128Gcm => 16 + 12,
            Suite::AeadAes256Gcm => 32 + 12,
        }
    }

    /// Looks a suite up by name, ASCII case-insensitively (ABNF literals).
    pub fn from_name(name: &[u8]) -> Option<Suite> {
        Suite::ALL
            .into_iter()
            .find(|s| s.name().as_bytes().eq_ignore_ascii_case(name))
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of suites (bitset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuiteSet(u16);

impl SuiteSet {
    pub const EMPTY: SuiteSet = SuiteSet(0);

    /// The default: the 80-bit-tag AES-CM suites and the AEAD GCM suites.
    pub fn default_allowed() -> SuiteSet {
        let mut s = SuiteSet::EMPTY;
        for suite in [
            Suite::AesCm128HmacSha1_80,
            Suite::Aes256CmHmacSha1_80,
            Suite::AeadAes128Gcm,
            Suite::AeadAes256Gcm,
        ] {
            s.insert(suite);
        }
        s
    }

    pub fn contains(self, suite: Suite) -> bool {
        self.0 & suite.bit() != 0
    }

    pub fn insert(&mut self, suite: Suite) {
        self.0 |= suite.bit();
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Suite> {
        Suite::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

/// What `check` accepts as an encrypted media stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdpPolicy {
    /// SDES suites accepted in `a=crypto`.
    pub suites: SuiteSet,
    /// UDP/TLS/RTP/SAVP(F) (and the DTLS SCTP data channel) with a valid
    /// `a=fingerprint` counts as encrypted.
    pub allow_dtls: bool,
    /// RTP/AVP(F) with a valid `a=crypto` (best-effort SRTP) is accepted.
    pub allow_optimistic: bool,
    /// SDES keys (`a=crypto`) count only when the signalling came over TLS:
    /// over UDP or TCP anyone on the path reads them (RFC 4568 section 8.3).
    pub sdes_needs_tls: bool,
}

impl Default for SdpPolicy {
    /// `suites=AES_CM_128_HMAC_SHA1_80,AES_256_CM_HMAC_SHA1_80,AEAD_AES_128_GCM,AEAD_AES_256_GCM;dtls=1;optimistic=0`
    fn default() -> Self {
        SdpPolicy {
            suites: SuiteSet::default_allowed(),
            allow_dtls: true,
            allow_optimistic: false,
            sdes_needs_tls: false,
        }
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Ok(true),
        "0" | "no" | "false" | "off" => Ok(false),
        _ => Err(format!(
            "sdp policy: bad value \"{value}\" for {key} (use 0 or 1)"
        )),
    }
}

impl SdpPolicy {
    /// Parses `key=value` items separated by `;`, e.g.
    /// `suites=AES_CM_128_HMAC_SHA1_80,AEAD_AES_256_GCM;dtls=1;optimistic=0`.
    /// Keys: `suites` (comma-separated suite names, or `default`), `dtls`,
    /// `optimistic` (booleans: 0/1, no/yes, false/true, off/on). Keys not
    /// given keep their default; an empty spec is the default. Whitespace
    /// around items is ignored; keys, booleans and suite names are
    /// case-insensitive. Every error quotes the offending token.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut policy = SdpPolicy::default();
        let (mut seen_suites, mut seen_dtls, mut seen_opt, mut seen_sdes) = (false, false, false, false);
        for item in spec.split(';') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let Some((key, value)) = item.split_once('=') else {
                return Err(format!("sdp policy: \"{item}\" is not key=value"));
            };
            let (key, value) = (key.trim(), value.trim());
            let seen = match key.to_ascii_lowercase().as_str() {
                "suites" => {
                    policy.suites = parse_suites(value)?;
                    &mut seen_suites
                }
                "dtls" => {
                    policy.allow_dtls = parse_bool(key, value)?;
                    &mut seen_dtls
                }
                "optimistic" => {
                    policy.allow_optimistic = parse_bool(key, value)?;
                    &mut seen_opt
                }
                "sdes_tls" => {
                    policy.sdes_needs_tls = parse_bool(key, value)?;
                    &mut seen_sdes
                }
                _ => {
                    return Err(format!(
                        "sdp policy: unknown key \"{key}\" (known: suites, dtls, optimistic, sdes_tls)"
                    ))
                }
            };
            if *seen {
                return Err(format!("sdp policy: key \"{key}\" given twice"));
            }
            *seen = true;
        }
        Ok(policy)
    }
}

fn parse_suites(value: &str) -> Result<SuiteSet, String> {
    if value.eq_ignore_ascii_case("default") {
        return Ok(SuiteSet::default_allowed());
    }
    let mut set = SuiteSet::EMPTY;
    for name in value.split(',') {
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        match Suite::from_name(name.as_bytes()) {
            Some(s) => set.insert(s),
            None => {
                let known: Vec<&str> = Suite::ALL.iter().map(|s| s.name()).collect();
                return Err(format!(
                    "sdp policy: unknown crypto suite \"{name}\" (known: {})",
                    known.join(", ")
                ));
            }
        }
    }
    if set.is_empty() {
        return Err(format!("sdp policy: suites=\"{value}\" lists no suite"));
    }
    Ok(set)
}

impl fmt::Display for SdpPolicy {
    /// The canonical spec; `SdpPolicy::parse` reads it back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("suites=")?;
        for (i, s) in self.suites.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(s.name())?;
        }
        write!(
            f,
            ";dtls={};optimistic={};sdes_tls={}",
            u8::from(self.allow_dtls),
            u8::from(self.allow_optimistic),
            u8::from(self.sdes_needs_tls)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy() {
        let p = SdpPolicy::default();
        assert!(p.suites.contains(Suite::AesCm128HmacSha1_80));
        assert!(p.suites.contains(Suite::Aes256CmHmacSha1_80));
        assert!(p.suites.contains(Suite::AeadAes128Gcm));
        assert!(p.suites.contains(Suite::AeadAes256Gcm));
        assert!(!p.suites.contains(Suite::AesCm128HmacSha1_32));
        assert!(!p.suites.contains(Suite::F8_128HmacSha1_80));
        assert!(p.allow_dtls && !p.allow_optimistic);
        assert_eq!(SdpPolicy::parse(""), Ok(p));
        assert_eq!(SdpPolicy::parse("  ; ;"), Ok(p));
    }

    #[test]
    fn spec_from_issue() {
        let p =
            SdpPolicy::parse("suites=AES_CM_128_HMAC_SHA1_80,AEAD_AES_256_GCM;dtls=1;optimistic=0").unwrap();
        assert_eq!(
            p.suites.iter().collect::<Vec<_>>(),
            [Suite::AesCm128HmacSha1_80, Suite::AeadAes256Gcm]
        );
        assert!(p.allow_dtls && !p.allow_optimistic);
        let p = SdpPolicy::parse(" DTLS = no ; Optimistic=YES ; suites = aes_cm_128_hmac_sha1_32 ").unwrap();
        assert_eq!(p.suites.iter().collect::<Vec<_>>(), [Suite::AesCm128HmacSha1_32]);
        assert!(!p.allow_dtls && p.allow_optimistic);
        assert_eq!(SdpPolicy::parse("suites=default").unwrap(), SdpPolicy::default());
    }

    #[test]
    fn display_round_trips() {
        for spec in [
            "",
            "suites=F8_128_HMAC_SHA1_80;dtls=0;optimistic=1",
            "optimistic=on",
            "sdes_tls=1;dtls=0",
        ] {
            let p = SdpPolicy::parse(spec).unwrap();
            assert_eq!(SdpPolicy::parse(&p.to_string()), Ok(p));
        }
        assert_eq!(
            SdpPolicy::default().to_string(),
            "suites=AES_CM_128_HMAC_SHA1_80,AES_256_CM_HMAC_SHA1_80,AEAD_AES_128_GCM,AEAD_AES_256_GCM;\
             dtls=1;optimistic=0;sdes_tls=0"
        );
    }

    #[test]
    fn errors_name_the_bad_token() {
        let e = SdpPolicy::parse("suites=AES_CM_128_HMAC_SHA1_80,AES_CM_129_X").unwrap_err();
        assert!(e.contains("\"AES_CM_129_X\""), "{e}");
        let e = SdpPolicy::parse("dtls=maybe").unwrap_err();
        assert!(e.contains("\"maybe\"") && e.contains("dtls"), "{e}");
        let e = SdpPolicy::parse("dtls=1;srtcp=1").unwrap_err();
        assert!(e.contains("\"srtcp\""), "{e}");
        let e = SdpPolicy::parse("dtls").unwrap_err();
        assert!(e.contains("\"dtls\""), "{e}");
        let e = SdpPolicy::parse("suites=").unwrap_err();
        assert!(e.contains("lists no suite"), "{e}");
        let e = SdpPolicy::parse("suites= , ").unwrap_err();
        assert!(e.contains("lists no suite"), "{e}");
        let e = SdpPolicy::parse("dtls=1;dtls=0").unwrap_err();
        assert!(e.contains("twice"), "{e}");
    }

    #[test]
    fn suite_lengths() {
        assert_eq!(Suite::AesCm128HmacSha1_80.key_salt_len(), 30);
        assert_eq!(Suite::AesCm128HmacSha1_32.key_salt_len(), 30);
        assert_eq!(Suite::Aes192CmHmacSha1_80.key_salt_len(), 38);
        assert_eq!(Suite::Aes256CmHmacSha1_32.key_salt_len(), 46);
        assert_eq!(Suite::AeadAes128Gcm.key_salt_len(), 28);
        assert_eq!(Suite::AeadAes256Gcm.key_salt_len(), 44);
        assert_eq!(Suite::from_name(b"aead_aes_256_gcm"), Some(Suite::AeadAes256Gcm));
        assert_eq!(Suite::from_name(b"AEAD_AES_256_GCM_8"), None);
    }
}
