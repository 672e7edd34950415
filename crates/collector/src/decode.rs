//! Request body decoding: the SDKs gzip every batch, so the collector must undo
//! `Content-Encoding` before it can look at the events.

use std::fmt;
use std::io::Read;

use flate2::read::{DeflateDecoder, GzDecoder, ZlibDecoder};

/// Why a body could not be decoded.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// A `Content-Encoding` other than gzip, deflate or identity.
    Unsupported(String),
    /// The bytes are not valid for the declared encoding.
    Corrupt(String),
    /// The decoded body would exceed the limit (a zip bomb must not exhaust memory).
    TooLarge,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsupported(encoding) => write!(f, "unsupported content-encoding `{encoding}`"),
            Self::Corrupt(reason) => write!(f, "body does not decode: {reason}"),
            Self::TooLarge => write!(f, "decoded body is too large"),
        }
    }
}

/// Decodes `wire` per the `Content-Encoding` header value, producing at most `limit` bytes.
///
/// `deflate` is meant to be zlib-wrapped (RFC 9110), but some clients send raw deflate, so
/// that is tried when zlib fails.
pub fn decode(encoding: Option<&str>, wire: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let encoding = encoding
        .map(|e| e.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match encoding.as_str() {
        "" | "identity" if wire.len() > limit => Err(DecodeError::TooLarge),
        "" | "identity" => Ok(wire.to_vec()),
        "gzip" | "x-gzip" => read_bounded(GzDecoder::new(wire), limit),
        "deflate" => read_bounded(ZlibDecoder::new(wire), limit)
            .or_else(|_| read_bounded(DeflateDecoder::new(wire), limit)),
        _ => Err(DecodeError::Unsupported(encoding)),
    }
}

fn read_bounded(reader: impl Read, limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;

    use super::{decode, DecodeError};

    const TEXT: &[u8] = b"[{\"request\":{}}]";

    #[test]
    fn decodes_every_supported_encoding() -> std::io::Result<()> {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(TEXT)?;
        let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
        zlib.write_all(TEXT)?;
        let mut raw = DeflateEncoder::new(Vec::new(), Compression::default());
        raw.write_all(TEXT)?;
        assert_eq!(
            decode(Some("gzip"), &gz.finish()?, 100).as_deref(),
            Ok(TEXT)
        );
        assert_eq!(
            decode(Some("Deflate"), &zlib.finish()?, 100).as_deref(),
            Ok(TEXT)
        );
        assert_eq!(
            decode(Some("deflate"), &raw.finish()?, 100).as_deref(),
            Ok(TEXT)
        );
        assert_eq!(decode(None, TEXT, 100).as_deref(), Ok(TEXT));
        Ok(())
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            decode(Some("br"), TEXT, 100),
            Err(DecodeError::Unsupported(_))
        ));
        assert!(matches!(
            decode(Some("gzip"), TEXT, 100),
            Err(DecodeError::Corrupt(_))
        ));
        assert_eq!(decode(None, TEXT, 3), Err(DecodeError::TooLarge));
    }
}
