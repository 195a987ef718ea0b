"""SDP bodies for the sipguard_sdp_check() end-to-end tests.

Each builder returns the body as bytes with CRLF line ends. Keys are
deterministic (seeded) so a failing case can be replayed byte for byte.
"""
from __future__ import annotations

import base64
import random

# RFC 4568 / RFC 6188 / RFC 7714: master key + salt lengths in bytes
KEY_SALT_BYTES = {
    "AES_CM_128_HMAC_SHA1_80": 16 + 14,   # 30 bytes -> 40 base64 chars
    "AES_CM_128_HMAC_SHA1_32": 16 + 14,
    "AES_256_CM_HMAC_SHA1_80": 32 + 14,   # 46 bytes -> 64 chars (with "==")
    "AEAD_AES_128_GCM": 16 + 12,          # 28 bytes -> 40 chars (with "==")
    "AEAD_AES_256_GCM": 32 + 12,          # 44 bytes -> 60 chars (with "=")
    "F8_128_HMAC_SHA1_80": 16 + 14,
}
DEFAULT_SUITES = ["AES_CM_128_HMAC_SHA1_80", "AES_256_CM_HMAC_SHA1_80",
                  "AEAD_AES_128_GCM", "AEAD_AES_256_GCM"]

FINGERPRINT = ("sha-256 " + ":".join(f"{b:02X}" for b in range(32)))

_rng = random.Random(4568)


def key(suite: str = "AES_CM_128_HMAC_SHA1_80", nbytes: int | None = None) -> str:
    """base64 inline key+salt of the right length for suite (or nbytes)."""
    n = KEY_SALT_BYTES[suite] if nbytes is None else nbytes
    return base64.b64encode(bytes(_rng.randrange(256) for _ in range(n))).decode()


def crypto(tag: int = 1, suite: str = "AES_CM_128_HMAC_SHA1_80", inline: str | None = None,
           extra: str = "") -> str:
    """An a=crypto line (no CRLF)."""
    return f"a=crypto:{tag} {suite} inline:{inline if inline is not None else key(suite)}{extra}"


def session(lines_before_media: list | None = None, ip: str = "127.0.0.1") -> list:
    out = [
        "v=0",
        f"o=alice 2890844526 2890844526 IN IP4 {ip}",
        "s=-",
        f"c=IN IP4 {ip}",
        "t=0 0",
    ]
    return out + list(lines_before_media or [])


def audio(port: int = 49170, proto: str = "RTP/SAVP", attrs: list | None = None,
          kind: str = "audio") -> list:
    fmt = "0 8 101" if kind == "audio" else "96"
    out = [f"m={kind} {port} {proto} {fmt}"]
    if kind == "audio":
        out += ["a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
                "a=rtpmap:101 telephone-event/8000"]
    else:
        out += ["a=rtpmap:96 VP8/90000"]
    return out + list(attrs or [])


def video(port: int = 51372, proto: str = "RTP/SAVP", attrs: list | None = None) -> list:
    return audio(port, proto, attrs, kind="video")


def join(lines: list) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


# ----------------------------------------------------------------------------
# the cases

def srtp_all(suite: str = "AES_CM_128_HMAC_SHA1_80") -> bytes:
    """Audio and video, both RTP/SAVP with a valid a=crypto."""
    return join(session() + audio(attrs=[crypto(1, suite)]) + video(attrs=[crypto(1, suite)]))


def srtp_audio_only(suite: str = "AES_CM_128_HMAC_SHA1_80", inline: str | None = None,
                    proto: str = "RTP/SAVP", extra: str = "") -> bytes:
    return join(session() + audio(proto=proto, attrs=[crypto(1, suite, inline, extra)]))


def srtp_audio_rtp_video() -> bytes:
    """Audio SRTP, video cleartext RTP/AVP: must be refused (-2)."""
    return join(session() + audio(attrs=[crypto()]) + video(proto="RTP/AVP"))


def session_level_crypto_only() -> bytes:
    """a=crypto before the first m= line (session level, where RFC 4568 does
    not allow it); the RTP/SAVP stream itself has none."""
    return join(session([crypto()]) + audio())


def disabled_cleartext_video() -> bytes:
    """Audio SRTP; video rejected with port 0 and no crypto: fine (1)."""
    return join(session() + audio(attrs=[crypto()]) + video(port=0, proto="RTP/AVP"))


def bad_key_length(nbytes: int = 20) -> bytes:
    return srtp_audio_only(inline=key(nbytes=nbytes))


def bad_base64() -> bytes:
    k = key()
    return srtp_audio_only(inline=k[:10] + "!*" + k[12:])


def unknown_suite(suite: str = "F8_128_HMAC_SHA1_80") -> bytes:
    return srtp_audio_only(suite=suite, inline=key(nbytes=30))


def dtls_srtp(proto: str = "UDP/TLS/RTP/SAVPF", fingerprint: bool = True) -> bytes:
    attrs = ["a=setup:actpass", "a=rtcp-mux"]
    if fingerprint:
        attrs.append(f"a=fingerprint:{FINGERPRINT}")
    return join(session() + audio(proto=proto, attrs=attrs))


def rtp_with_crypto() -> bytes:
    """RTP/AVP carrying a real a=crypto line (only allowed with optimistic=1)."""
    return join(session() + audio(proto="RTP/AVP", attrs=[crypto()]))


def crypto_inside_other_attribute() -> bytes:
    """RTP/AVP whose only mention of crypto is inside another attribute's
    value (and in the session name): not an a=crypto line."""
    lines = session() + audio(proto="RTP/AVP", attrs=[
        f"a=x-note:{crypto()}",
        f"a=label:a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{key()}",
    ])
    lines[2] = f"s={crypto()}"
    return join(lines)


def cleartext_audio() -> bytes:
    return join(session() + audio(proto="RTP/AVP"))


def many_streams(n: int, proto: str = "RTP/SAVP") -> bytes:
    lines = session()
    for i in range(n):
        lines += [f"m=audio {20000 + 2 * i} {proto} 0", crypto()]
    return join(lines)


def many_m_lines(n: int = 5000) -> bytes:
    """n m= lines, nothing else per stream (hostile; ~100 KB for 5000)."""
    lines = session()
    for i in range(n):
        lines.append(f"m=audio {10000 + i} RTP/SAVP 0")
    return join(lines)


def oversized_valid(target: int = 70 * 1024) -> bytes:
    """A valid SRTP offer padded with harmless attributes past `target` bytes."""
    lines = session() + audio(attrs=[crypto()])
    pad = "a=x-pad:" + "p" * 100
    body = join(lines)
    n = (target - len(body)) // (len(pad) + 2) + 1
    return join(lines + [pad] * n)


def random_bytes(n: int = 100 * 1024, seed: int = 100) -> bytes:
    r = random.Random(seed)
    return bytes(r.randrange(256) for _ in range(n))


def multipart(sdp: bytes, boundary: str = "sgBoundary42") -> tuple:
    """(content_type, body): multipart/mixed with an SDP part and a text part."""
    parts = [
        (b"Content-Type: text/plain\r\n\r\nhello, this is not SDP\r\n"),
        (b"Content-Type: application/sdp\r\nContent-Disposition: session\r\n\r\n" + sdp),
    ]
    # RFC 2046: the CRLF before each delimiter belongs to the delimiter
    body = b"".join(f"--{boundary}\r\n".encode() + p + b"\r\n" for p in parts)
    body += f"--{boundary}--\r\n".encode()
    return f"multipart/mixed;boundary={boundary}", body
