//! Files attached to messages: what an upload is, and the content address its bytes are kept
//! under.

/// Where a blob's bytes are kept: the lowercase hex SHA-256 of those bytes, so that identical
/// bytes are stored once whoever uploads them (content addressing).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobKey(String);

impl BlobKey {
    /// A key from a SHA-256 digest.
    pub fn from_digest(digest: &[u8; 32]) -> Self {
        use std::fmt::Write;
        let mut hex = String::with_capacity(64);
        for byte in digest {
            let _ = write!(hex, "{byte:02x}");
        }
        Self(hex)
    }

    /// A key read back from storage: 64 lowercase hex digits, else `None`.
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == 64 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BlobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an image upload shows: its size in pixels and its thumbnail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub width: u32,
    pub height: u32,
    /// The thumbnail's encoded bytes (longest side at most the side asked for; an image
    /// already that small is its own thumbnail and has none), and their content type.
    pub thumbnail: Option<(Vec<u8>, &'static str)>,
}

/// Why an image could not be inspected. Either way the upload is refused with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefused {
    /// More pixels than the limit (a decompression bomb, or just too large): refused from
    /// its header, never decoded.
    #[error("the image is {width}x{height} pixels; at most {max_pixels} pixels are accepted")]
    TooLarge {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    /// The bytes claim an image type but do not decode as one.
    #[error("the image could not be decoded")]
    Corrupt,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_the_digest_in_lowercase_hex_and_parses_back() {
        let key = BlobKey::from_digest(&[0xab; 32]);
        assert_eq!(key.as_str(), "ab".repeat(32));
        assert_eq!(BlobKey::parse(key.as_str()), Some(key));
        assert_eq!(BlobKey::parse(&"AB".repeat(32)), None);
        assert_eq!(BlobKey::parse("../etc/passwd"), None);
        assert_eq!(BlobKey::parse(""), None);
    }
}
