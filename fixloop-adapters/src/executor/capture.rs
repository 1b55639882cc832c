//! [`Captured`]: the size-capped, secret-redacted output of an action (a response body, a command's stdout or
//! stderr), and the bounded readers that fill it.

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::secret::Secret;

/// The default cap on each captured output, in bytes.
pub const DEFAULT_OUTPUT_LIMIT: usize = 16 * 1024;

/// Output an action produced, cut to a byte limit (on a character boundary), lossily decoded as UTF-8, with every
/// configured secret value replaced by `[redacted]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Captured {
    /// The kept text.
    pub text: String,
    /// Whether the output was longer than the limit and was cut.
    pub truncated: bool,
    /// How many bytes the output had in all (kept or not).
    pub total_bytes: u64,
}

impl Captured {
    /// Captures `bytes` (the first bytes of an output of `total_bytes` bytes in all), redacting `secrets`, then
    /// cutting the text to `limit` bytes on a character boundary. Redaction comes first, so a secret that straddles
    /// the limit is not half shown.
    #[must_use]
    pub fn from_bytes(bytes: &[u8], total_bytes: u64, limit: usize, secrets: &[&Secret]) -> Self {
        let mut text = String::from_utf8_lossy(bytes).into_owned();
        for secret in secrets {
            if !secret.is_empty() {
                text = text.replace(secret.expose(), "[redacted]");
            }
        }
        let mut truncated = total_bytes > bytes.len() as u64;
        if text.len() > limit {
            let mut end = limit;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            truncated = true;
        }
        Self {
            text,
            truncated,
            total_bytes,
        }
    }

    /// Nothing captured.
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }
}

/// Reads `reader` to its end, keeping the first `limit` bytes (plus a margin, so a secret cut at the limit is
/// still seen whole by the redaction) and counting the rest: a child that writes more than the cap never blocks on
/// a full pipe.
pub(crate) async fn read_capped(
    mut reader: impl AsyncRead + Unpin,
    limit: usize,
) -> std::io::Result<(Vec<u8>, u64)> {
    let keep = limit.saturating_add(256);
    let mut kept = Vec::new();
    let mut total = 0u64;
    let mut buffer = [0u8; 8192];
    loop {
        let read = reader.read(&mut buffer).await?;
        if read == 0 {
            return Ok((kept, total));
        }
        total += read as u64;
        let room = keep.saturating_sub(kept.len());
        kept.extend_from_slice(&buffer[..read.min(room)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_cut_on_a_character_boundary_and_redacted() {
        let secret = Secret::new("hunter2");
        let text = "token=hunter2 ééé";
        let captured = Captured::from_bytes(text.as_bytes(), text.len() as u64, 20, &[&secret]);
        assert_eq!(captured.text, "token=[redacted] é");
        let whole = Captured::from_bytes(b"ok", 2, 20, &[&secret]);
        assert_eq!((whole.text.as_str(), whole.truncated), ("ok", false));
        assert!(captured.truncated);
        assert_eq!(captured.total_bytes, text.len() as u64);
    }

    #[tokio::test]
    async fn reading_keeps_a_bounded_prefix_and_counts_everything() {
        let data = vec![b'x'; 100_000];
        let (kept, total) = read_capped(&data[..], 1000).await.unwrap();
        assert_eq!(total, 100_000);
        assert_eq!(kept.len(), 1256);
    }
}
