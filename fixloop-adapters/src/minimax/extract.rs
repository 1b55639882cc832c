//! Pure helpers that pull the answer out of an LLM's text: reasoning (`<think>` blocks) is dropped and the first
//! balanced JSON value that parses is extracted, wherever it sits (code fences, prose around it).
//!
//! Every function here is total: arbitrary input never panics (a proptest checks it), and the work is bounded by
//! [`MAX_SCAN_BYTES`] and [`MAX_CANDIDATES`].

use serde_json::Value;

/// Longest text scanned for JSON, in bytes; the rest is ignored.
pub const MAX_SCAN_BYTES: usize = 512 * 1024;

/// Most candidate openings (`{` or `[`) tried before giving up.
pub const MAX_CANDIDATES: usize = 256;

const THINK_OPEN: &str = "<think>";
const THINK_CLOSE: &str = "</think>";

/// The visible answer of a reasoning model: the text after the last `</think>` (which also handles a lone closing
/// tag with the reasoning before it, as self-hosted M2 emits), or the text before an unterminated `<think>` (the
/// reasoning ran out of budget), or the whole text when there is no tag.
#[must_use]
pub fn strip_reasoning(text: &str) -> &str {
    if let Some(close) = text.rfind(THINK_CLOSE) {
        &text[close + THINK_CLOSE.len()..]
    } else if let Some(open) = text.find(THINK_OPEN) {
        &text[..open]
    } else {
        text
    }
}

/// The first balanced JSON object or array in `text` that parses, or `None`.
#[must_use]
pub fn extract_json(text: &str) -> Option<Value> {
    json_candidates(text).next()
}

/// Every balanced JSON object or array of `text` that parses, in order of appearance. After a value parses, the
/// scan resumes after it (values nested inside a parsed one are not yielded again); after an opening that does not
/// parse, the scan resumes at the next character, so a value nested inside broken prose is still found.
pub fn json_candidates(text: &str) -> impl Iterator<Item = Value> + '_ {
    let mut end = text.len().min(MAX_SCAN_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Candidates {
        text: &text[..end],
        position: 0,
        tried: 0,
    }
}

struct Candidates<'a> {
    text: &'a str,
    position: usize,
    tried: usize,
}

impl Iterator for Candidates<'_> {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        let bytes = self.text.as_bytes();
        while self.position < bytes.len() && self.tried < MAX_CANDIDATES {
            let start = self.position;
            if bytes[start] != b'{' && bytes[start] != b'[' {
                self.position += 1;
                continue;
            }
            self.tried += 1;
            match balanced_end(bytes, start) {
                Some(end) => {
                    // `start` and `end` index ASCII brackets, so both are char boundaries.
                    if let Ok(value) = serde_json::from_str::<Value>(&self.text[start..=end]) {
                        self.position = end + 1;
                        return Some(value);
                    }
                    self.position = start + 1;
                }
                None => self.position = start + 1,
            }
        }
        None
    }
}

/// Index of the bracket closing the one at `start`, skipping brackets inside JSON strings.
fn balanced_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (index, &byte) in bytes.iter().enumerate().skip(start) {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(index);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn think_blocks_are_dropped() {
        assert_eq!(
            strip_reasoning("<think>\nhmm {\"a\":1}\n</think>\n\nanswer").trim(),
            "answer"
        );
        assert_eq!(
            strip_reasoning("reasoning only\n</think>\nanswer").trim(),
            "answer"
        );
        assert_eq!(strip_reasoning("<think>ran out of budget {").trim(), "");
        assert_eq!(strip_reasoning("plain"), "plain");
    }

    #[test]
    fn json_is_found_in_fences_and_prose() {
        let text =
            "Sure! Here is the plan:\n```json\n{\"items\": [{\"a\": \"}\"}]}\n```\nHope it helps.";
        assert_eq!(extract_json(text), Some(json!({"items": [{"a": "}"}]})));
        assert_eq!(
            extract_json("see [the docs] then [1, 2]"),
            Some(json!([1, 2]))
        );
        assert_eq!(extract_json("no json here"), None);
        assert_eq!(extract_json("{\"unterminated\": "), None);
    }

    #[test]
    fn candidates_come_in_order_without_nested_repeats() {
        let all: Vec<Value> = json_candidates("[1] {\"x\": {\"y\": 2}} {bad} {\"z\": 3}").collect();
        assert_eq!(
            all,
            vec![json!([1]), json!({"x": {"y": 2}}), json!({"z": 3})]
        );
    }

    proptest! {
        #[test]
        fn extraction_never_panics(text in any::<String>()) {
            let _ = strip_reasoning(&text);
            let _ = json_candidates(&text).count();
        }

        #[test]
        fn extraction_never_panics_on_jsonish_text(text in "[{}\\[\\]\"\\\\:,a-z0-9 <>/think]{0,200}") {
            let _ = extract_json(strip_reasoning(&text));
            let _ = json_candidates(&text).count();
        }

        #[test]
        fn an_embedded_object_is_always_found(prefix in "[a-z .!]{0,40}", suffix in "[a-z .!]{0,40}", n in 0u32..1000) {
            let text = format!("{prefix}```json\n{{\"n\": {n}}}\n```{suffix}");
            prop_assert_eq!(extract_json(&text), Some(json!({"n": n})));
        }
    }
}
