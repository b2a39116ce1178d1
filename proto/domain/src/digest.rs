//! Lowercase hex, for SHA-256 digests of artifacts.

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// True for 64 lowercase hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Splits `flint://<sha256>/<name>` into its digest and file name.
pub fn parse_artifact_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("flint://")?;
    let (sha, name) = rest.split_once('/')?;
    (is_sha256_hex(sha) && !name.is_empty() && !name.contains('/') && name != ".." && name != ".")
        .then_some((sha, name))
}

pub fn artifact_uri(sha: &str, name: &str) -> String {
    format!("flint://{sha}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        let sha = "a".repeat(64);
        assert_eq!(
            parse_artifact_uri(&artifact_uri(&sha, "pi")),
            Some((sha.as_str(), "pi"))
        );
        assert_eq!(parse_artifact_uri("flint://abc/pi"), None);
        assert_eq!(parse_artifact_uri(&format!("flint://{sha}/../x")), None);
        assert_eq!(parse_artifact_uri(&format!("flint://{sha}/")), None);
        assert_eq!(hex(&[0, 255, 16]), "00ff10");
    }
}
