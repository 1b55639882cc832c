//! Plain-text helpers of the copilot's safety rule: sentences of an answer as slices of it ([`split_sentences`])
//! and cuts on a word boundary ([`cut_on_word`]).

/// The sentences of `text`, as slices of it (each with its end mark, trimmed): split after `.`, `!`, `?` followed
/// by a space or the end (not inside `0.4` or `app.example.com`), and at line breaks. Empty pieces are dropped.
#[must_use]
pub fn split_sentences(text: &str) -> Vec<&str> {
    let mut sentences = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let next = chars.peek().map(|&(_, next)| next);
        let ends = match c {
            '\n' | '\r' => true,
            '.' | '!' | '?' | '…' => next.is_none_or(|next| {
                next.is_whitespace() || matches!(next, '"' | '\'' | ')' | '\u{201d}')
            }),
            _ => false,
        };
        if ends {
            let mut end = at + c.len_utf8();
            // A closing quote or bracket right after the mark belongs to the sentence.
            while let Some(&(quote_at, quote)) = chars.peek() {
                if matches!(quote, '"' | '\'' | ')' | '\u{201d}' | '.' | '!' | '?') {
                    end = quote_at + quote.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            sentences.push(&text[start..end]);
            start = end;
        }
    }
    sentences.push(&text[start..]);
    sentences
        .into_iter()
        .map(str::trim)
        .filter(|sentence| sentence.chars().any(char::is_alphanumeric))
        .collect()
}

/// `text` when at most `max` characters, else its longest prefix of whole words (at most `max` characters, the
/// trailing punctuation and spaces dropped) followed by `…`. A single word longer than `max` is cut at `max`.
#[must_use]
pub fn cut_on_word(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let end = text
        .char_indices()
        .nth(max)
        .map_or(text.len(), |(at, _)| at);
    // Cut at the last space at or before `end`; if the character at `end` is a space, the word before is whole.
    let cut = if text[end..].starts_with(char::is_whitespace) {
        end
    } else {
        text[..end].rfind(char::is_whitespace).unwrap_or(end)
    };
    let kept = text[..cut]
        .trim_end_matches(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':' | '('));
    format!("{kept}…")
}
