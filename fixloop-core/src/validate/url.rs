//! The validator's strict URL parser: the parts of an absolute `http`/`https` URL the allowlist compares
//! ([`ParsedUrl`]), parsed by hand so that nothing can smuggle a request elsewhere (userinfo, fragments, control
//! characters, backslashes, dot segments, percent-encoded separators are refused). Servers check in a property test
//! that it agrees with the `url` crate on every URL it accepts.

use super::shown;

/// The parts of an absolute http(s) URL that the allowlist compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ParsedUrl<'a> {
    https: bool,
    /// The host as written (IPv6 literals keep their brackets); compared case-insensitively.
    host: &'a str,
    port: u16,
    /// The path, `""` when the URL has none.
    path: &'a str,
}

impl ParsedUrl<'_> {
    /// The path of `self` relative to `base` when `self` is inside it.
    pub(super) fn relative_to(&self, base: &ParsedUrl<'_>) -> Option<String> {
        if self.https != base.https
            || !self.host.eq_ignore_ascii_case(base.host)
            || self.port != base.port
        {
            return None;
        }
        let base_path = base.path.trim_end_matches('/');
        let rest = self.path.strip_prefix(base_path)?;
        if rest.is_empty() {
            Some("/".to_owned())
        } else if rest.starts_with('/') {
            Some(rest.to_owned())
        } else {
            None
        }
    }
}

/// Parses an absolute http(s) URL by hand, rejecting everything that could smuggle a request elsewhere.
pub(super) fn parse_url(url: &str) -> Result<ParsedUrl<'_>, String> {
    if url.is_empty() {
        return Err("is empty".to_owned());
    }
    // One pass over the bytes; the problems are then reported in a fixed order.
    let (mut non_ascii, mut space_or_control, mut backslash, mut fragment) =
        (false, false, false, false);
    for byte in url.bytes() {
        non_ascii |= !byte.is_ascii();
        space_or_control |= byte.is_ascii_whitespace() || byte.is_ascii_control();
        backslash |= byte == b'\\';
        fragment |= byte == b'#';
    }
    if non_ascii && let Some(c) = url.chars().find(|c| !c.is_ascii()) {
        return Err(format!(
            "contains the non-ASCII character {c:?}; percent-encode it or use an ASCII host"
        ));
    }
    if space_or_control {
        return Err("contains whitespace or a control character".to_owned());
    }
    if backslash {
        return Err("contains a backslash".to_owned());
    }
    if fragment {
        return Err("contains a fragment (`#...`)".to_owned());
    }
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        "is not an absolute URL; it must start with http:// or https://".to_owned()
    })?;
    let https = match scheme {
        _ if scheme.eq_ignore_ascii_case("http") => false,
        _ if scheme.eq_ignore_ascii_case("https") => true,
        _ => {
            return Err(format!(
                "has scheme {}; only http and https are allowed",
                shown(scheme)
            ));
        }
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(authority_end);
    if authority.contains('@') {
        return Err("contains userinfo (`user@`); credentials never go in the URL".to_owned());
    }
    let (host, port) = split_host_port(authority)?;
    let port = match port {
        None => {
            if https {
                443
            } else {
                80
            }
        }
        Some(port) => port,
    };
    let path = after.split_once('?').map_or(after, |(path, _)| path);
    check_path(path)?;
    Ok(ParsedUrl {
        https,
        host,
        port,
        path,
    })
}

pub(super) fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (address, after) = inner
            .split_once(']')
            .ok_or_else(|| "has an unterminated IPv6 address".to_owned())?;
        if address.is_empty()
            || !address
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'))
        {
            return Err("has an invalid IPv6 address".to_owned());
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| "has characters after the IPv6 address".to_owned())?,
            ),
        };
        (&authority[..address.len() + 2], port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err("has no host".to_owned());
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
        {
            return Err(format!(
                "has the invalid host {}; only letters, digits, `-` and `.` are allowed",
                shown(host)
            ));
        }
        (host, port)
    };
    let port = match port {
        None => None,
        Some(text) => {
            if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("has the invalid port {}", shown(text)));
            }
            match text.parse::<u16>() {
                Ok(port) if port > 0 => Some(port),
                _ => return Err(format!("has the invalid port {}", shown(text))),
            }
        }
    };
    Ok((host, port))
}

pub(super) fn check_path(path: &str) -> Result<(), String> {
    let bytes = path.as_bytes();
    for (index, &byte) in bytes.iter().enumerate() {
        if byte != b'%' {
            continue;
        }
        let decoded = bytes
            .get(index + 1..index + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .ok_or_else(|| "has a `%` that is not followed by two hex digits".to_owned())?;
        if matches!(decoded, b'.' | b'/' | b'\\' | b'%') || decoded.is_ascii_control() {
            return Err(format!(
                "has the encoded character `%{}` in its path; encoded dots, slashes, backslashes, percent signs and control characters are not allowed",
                &path[index + 1..index + 3]
            ));
        }
    }
    if path.is_empty() {
        return Ok(());
    }
    let mut segments = path[1..].split('/').peekable();
    while let Some(segment) = segments.next() {
        // Some servers drop `;parameters` before normalising, turning `..;x` into `..`.
        let name = segment.split(';').next().unwrap_or_default();
        match name {
            "." | ".." => {
                return Err(format!(
                    "has a `{name}` path segment; dot segments are not allowed"
                ));
            }
            "" if segments.peek().is_some() => {
                return Err("has an empty path segment (`//`)".to_owned());
            }
            _ => {}
        }
    }
    Ok(())
}
