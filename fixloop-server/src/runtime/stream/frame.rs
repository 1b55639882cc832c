//! Server-to-client WebSocket frames (RFC 6455 §5.2), built once and written as they are to every client.
//!
//! A server never masks its frames, so one encoded frame is valid on every connection: the hub serializes an event
//! into a complete text frame once ([`super::SharedText::frame`]), and a connection writes those bytes to its socket
//! without encoding anything per client. The frames are the ones tungstenite writes for the same message: one final
//! frame, no extensions, the shortest length encoding.

use bytes::Bytes;

/// Opcode of a text frame.
pub const TEXT: u8 = 0x1;
/// Opcode of a close frame.
pub const CLOSE: u8 = 0x8;
/// Opcode of a ping frame.
pub const PING: u8 = 0x9;
/// Opcode of a pong frame.
pub const PONG: u8 = 0xA;

/// The longest frame header a server writes: two bytes and a 64-bit length.
pub const MAX_HEADER: usize = 10;

/// The header of an unmasked final frame with `opcode` and a payload of `length` bytes, right-aligned in the
/// returned array; the second value is the header's length (2, 4 or 10).
#[must_use]
pub fn header(opcode: u8, length: usize) -> ([u8; MAX_HEADER], usize) {
    let mut header = [0; MAX_HEADER];
    let first = 0x80 | (opcode & 0x0F);
    let used = if length < 126 {
        header[MAX_HEADER - 2] = first;
        // `length < 126` fits in the seven-bit field.
        header[MAX_HEADER - 1] = length as u8;
        2
    } else if let Ok(short) = u16::try_from(length) {
        header[MAX_HEADER - 4] = first;
        header[MAX_HEADER - 3] = 126;
        header[MAX_HEADER - 2..].copy_from_slice(&short.to_be_bytes());
        4
    } else {
        header[0] = first;
        header[1] = 127;
        header[2..].copy_from_slice(&(length as u64).to_be_bytes());
        10
    };
    (header, used)
}

/// A complete frame with `opcode` and `payload`.
#[must_use]
pub fn encode(opcode: u8, payload: &[u8]) -> Bytes {
    let (header, used) = header(opcode, payload.len());
    let mut frame = Vec::with_capacity(used + payload.len());
    frame.extend_from_slice(&header[MAX_HEADER - used..]);
    frame.extend_from_slice(payload);
    Bytes::from(frame)
}

/// A close frame with `code` and `reason`.
#[must_use]
pub fn close(code: u16, reason: &str) -> Bytes {
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(reason.as_bytes());
    encode(CLOSE, &payload)
}

/// Text built behind room for its own frame header: `buffer` starts with [`MAX_HEADER`] reserved bytes followed by
/// the text; the header is written into the end of the reserved room, so the frame is built without copying the
/// text. Returns the whole frame and the header's length.
#[must_use]
pub fn text_in_place(mut buffer: Vec<u8>) -> (Bytes, usize) {
    let length = buffer.len().saturating_sub(MAX_HEADER);
    let (header, used) = header(TEXT, length);
    let start = MAX_HEADER - used;
    buffer[start..MAX_HEADER].copy_from_slice(&header[start..]);
    (Bytes::from(buffer).slice(start..), used)
}

#[cfg(test)]
mod tests {
    use tungstenite::protocol::frame::Frame;
    use tungstenite::protocol::frame::coding::{Data, OpCode};

    use super::*;

    /// What tungstenite writes for the same frame.
    fn tungstenite_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Frame::message(payload.to_vec(), opcode, true)
            .format(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn frames_are_byte_identical_to_tungstenites() {
        for length in [0, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let payload = "x".repeat(length);
            let expected = tungstenite_frame(OpCode::Data(Data::Text), payload.as_bytes());
            assert_eq!(
                encode(TEXT, payload.as_bytes()),
                expected,
                "length {length}"
            );
            let mut reserved = vec![0; MAX_HEADER];
            reserved.extend_from_slice(payload.as_bytes());
            let (in_place, used) = text_in_place(reserved);
            assert_eq!(in_place, expected, "in place, length {length}");
            assert_eq!(&in_place[used..], payload.as_bytes());
        }
        // Control frames (RFC 6455 §5.5): final, opcode, the payload length in one byte, no mask.
        assert_eq!(encode(PING, b"fixloop")[..], b"\x89\x07fixloop"[..]);
        assert_eq!(
            close(1008, "client too slow")[..],
            b"\x88\x11\x03\xf0client too slow"[..]
        );
    }
}
