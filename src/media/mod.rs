//! Encrypted signalling and media: the SDP/SRTP policy check and whether a
//! REGISTER's Contact asks for TLS.

pub mod contact;
pub mod sdp;
