//! Small text helpers of `profile init`: JSON accessors, slugs, one-line summaries, percent-encoding and the
//! names of the environment variables that hold credentials.

use serde_json::Value;

pub(super) fn str_at<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// A scalar as text (strings without quotes).
pub(super) fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Lowercase `a-z 0-9` words joined by `-`, at most `max` bytes.
pub(super) fn slug(text: &str, max: usize) -> String {
    slug_words(text, max, false)
}

/// [`slug`] for identifiers, splitting camelCase words: `getPetById` becomes `get-pet-by-id`.
pub(super) fn id_slug(text: &str, max: usize) -> String {
    slug_words(text, max, true)
}

pub(super) fn slug_words(text: &str, max: usize, split_camel: bool) -> String {
    let mut slug = String::new();
    let mut previous_lower = false;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            if split_camel && c.is_ascii_uppercase() && previous_lower && !slug.ends_with('-') {
                slug.push('-');
            }
            previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            slug.push(c.to_ascii_lowercase());
        } else {
            previous_lower = false;
            if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
    }
    slug.truncate(max);
    slug.trim_matches('-').to_owned()
}

/// `FIXLOOP_` and the scheme's name in `A-Z 0-9 _`.
pub(super) fn env_name(scheme: &str) -> String {
    let mut name = String::from("FIXLOOP_");
    for c in scheme.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_uppercase());
        } else if !name.ends_with('_') {
            name.push('_');
        }
    }
    name.trim_end_matches('_').to_owned()
}

/// The first line, whitespace collapsed, at most 120 characters.
pub(super) fn one_line(text: &str) -> String {
    let line = text
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("");
    truncate(&line.split_whitespace().collect::<Vec<_>>().join(" "), 120)
}

/// The first paragraph's first two sentences, whitespace collapsed, at most 300 characters.
pub(super) fn short_description(text: &str) -> String {
    let paragraph = text
        .split("\n\n")
        .map(|paragraph| paragraph.trim().trim_start_matches('#').trim())
        .find(|paragraph| !paragraph.is_empty())
        .unwrap_or("");
    let words = paragraph.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut end = words.len();
    let mut sentences = 0;
    for (index, _) in words.match_indices(". ") {
        sentences += 1;
        if sentences == 2 {
            end = index + 1;
            break;
        }
    }
    truncate(&words[..end], 300)
}

pub(super) fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max_chars - 1).collect();
    short.push('…');
    short
}

/// Percent-encodes `text` into `out`, keeping unreserved characters (and `/`, sub-delimiters, `:` and `@` when
/// `path` is true: literal path text).
pub(super) fn encode_into(out: &mut String, text: &str, path: bool) {
    for byte in text.bytes() {
        let keep = byte.is_ascii_alphanumeric()
            || b"-._~".contains(&byte)
            || (path && b"/!$&'()*+,;=:@".contains(&byte));
        if keep {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

/// Whether `byte` may appear in an HTTP header name (an RFC 9110 token).
pub(super) fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}
