//! Java's "modified UTF-8", the string encoding of `DataOutput.writeUTF` and of strings inside
//! Java serialization streams.
//!
//! It differs from UTF-8 in two ways: NUL is written as the two bytes `C0 80`, and characters
//! outside the Basic Multilingual Plane are written as two 3-byte sequences, one per UTF-16
//! surrogate. Decoding is as lenient as `DataInputStream.readUTF`: a raw `00` byte and other
//! overlong forms are accepted. Java strings may hold unpaired surrogates, Rust strings may
//! not: those become U+FFFD.

/// A byte sequence that is not modified UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed modified UTF-8 at byte {offset}")]
pub struct Mutf8Error {
    /// Offset of the first byte of the malformed sequence.
    pub offset: usize,
}

/// Number of bytes `s` takes in modified UTF-8.
pub fn encoded_len(s: &str) -> usize {
    s.chars()
        .map(|c| match c as u32 {
            0 => 2,
            1..=0x7f => 1,
            0x80..=0x7ff => 2,
            0x800..=0xffff => 3,
            _ => 6,
        })
        .sum()
}

/// Appends the modified UTF-8 form of `s` to `out` (without any length prefix).
pub fn encode_into(s: &str, out: &mut Vec<u8>) {
    out.reserve(encoded_len(s));
    let mut units = [0u16; 2];
    for c in s.chars() {
        for &unit in c.encode_utf16(&mut units).iter() {
            push_unit(unit, out);
        }
    }
}

/// The modified UTF-8 form of `s` (without any length prefix).
pub fn encode(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(s, &mut out);
    out
}

fn push_unit(unit: u16, out: &mut Vec<u8>) {
    match unit {
        1..=0x7f => out.push(unit as u8),
        0 | 0x80..=0x7ff => {
            out.push(0xc0 | (unit >> 6) as u8);
            out.push(0x80 | (unit & 0x3f) as u8);
        }
        _ => {
            out.push(0xe0 | (unit >> 12) as u8);
            out.push(0x80 | ((unit >> 6) & 0x3f) as u8);
            out.push(0x80 | (unit & 0x3f) as u8);
        }
    }
}

/// Decodes modified UTF-8 (without any length prefix).
pub fn decode(bytes: &[u8]) -> Result<String, Mutf8Error> {
    // Fast path: pure ASCII without NUL is the same in both encodings.
    if bytes.iter().all(|&b| b != 0 && b < 0x80) {
        return Ok(bytes.iter().map(|&b| b as char).collect());
    }
    let mut units: Vec<u16> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b0) = bytes.get(i) {
        let err = Mutf8Error { offset: i };
        match b0 >> 4 {
            0x0..=0x7 => {
                units.push(u16::from(b0));
                i += 1;
            }
            0xc | 0xd => {
                let b1 = continuation(bytes, i + 1).ok_or(err)?;
                units.push((u16::from(b0 & 0x1f) << 6) | b1);
                i += 2;
            }
            0xe => {
                let b1 = continuation(bytes, i + 1).ok_or(err)?;
                let b2 = continuation(bytes, i + 2).ok_or(err)?;
                units.push((u16::from(b0 & 0x0f) << 12) | (b1 << 6) | b2);
                i += 3;
            }
            _ => return Err(err),
        }
    }
    Ok(char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect())
}

fn continuation(bytes: &[u8], at: usize) -> Option<u16> {
    match bytes.get(at) {
        Some(&b) if b & 0xc0 == 0x80 => Some(u16::from(b & 0x3f)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_is_unchanged() {
        assert_eq!(encode("127.0.0.1"), b"127.0.0.1");
        assert_eq!(decode(b"Master").unwrap(), "Master");
    }

    #[test]
    fn nul_is_two_bytes() {
        assert_eq!(encode("a\0b"), [b'a', 0xc0, 0x80, b'b']);
        assert_eq!(decode(&[b'a', 0xc0, 0x80, b'b']).unwrap(), "a\0b");
        // readUTF also accepts a raw NUL byte
        assert_eq!(decode(&[0]).unwrap(), "\0");
    }

    #[test]
    fn bmp_and_supplementary_characters() {
        assert_eq!(encode("é"), [0xc3, 0xa9]);
        assert_eq!(encode("€"), [0xe2, 0x82, 0xac]);
        // U+1F600 is the surrogate pair D83D DE00, each written as 3 bytes
        let smile = encode("😀");
        assert_eq!(smile, [0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]);
        assert_eq!(encoded_len("😀"), 6);
        assert_eq!(decode(&smile).unwrap(), "😀");
    }

    #[test]
    fn round_trip() {
        for s in [
            "",
            "plain",
            "a\0\0z",
            "ünïcödé €uro",
            "𝄞 music 😀",
            "日本語",
        ] {
            let bytes = encode(s);
            assert_eq!(bytes.len(), encoded_len(s));
            assert_eq!(decode(&bytes).unwrap(), s);
        }
    }

    #[test]
    fn malformed_sequences_are_errors() {
        assert_eq!(decode(&[0x80]), Err(Mutf8Error { offset: 0 }));
        assert_eq!(decode(&[b'x', 0xc3]), Err(Mutf8Error { offset: 1 }));
        assert_eq!(decode(&[0xe2, 0x82]), Err(Mutf8Error { offset: 0 }));
        assert_eq!(
            decode(&[0xf0, 0x9f, 0x98, 0x80]),
            Err(Mutf8Error { offset: 0 })
        );
        assert_eq!(decode(&[0xe2, 0x02, 0xac]), Err(Mutf8Error { offset: 0 }));
    }

    #[test]
    fn lone_surrogate_becomes_replacement_character() {
        assert_eq!(decode(&[0xed, 0xa0, 0xbd]).unwrap(), "\u{fffd}");
    }
}
