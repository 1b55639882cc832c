//! Which `GET`s are not safe to call on their own: names that announce a side effect, and streams.
//!
//! A `GET` should be safe, and many are not: Slack's `apps.uninstall`, `users.setPresence`, a `/logout` link.
//! [`side_effect_word`] reads an operation id, a path or a summary as words (split at punctuation, `_`, `-`, `.`,
//! `/` and camelCase humps) and returns the first word naming a side effect. Two lists:
//!
//! - verbs that are a side effect wherever they appear as a whole word (`uninstall`, `delete`, `revoke`, `reset`,
//!   `logout`, `send`, …): `apps.uninstall` and `/users/{id}/delete` match, `resetting-docs`, `deleted_items` and
//!   `/sender-stats` do not (whole words only, no stemming);
//! - verbs that are also common nouns (`set`, `post`, `create`, `update`, `run`, …) only where they lead a
//!   compound name: `users.setPresence`, `chat.postMessage` and `create_user` match, `/posts`, `/post/{id}` and
//!   `getDataSet` do not.
//!
//! A summary is prose: its first word also matches in the third person (`Uninstalls an app`, `Sends a message`).
//! `profile init` checks the operation id, the path, the summary and the journey id it writes, and comments such
//! journeys out; the profile check refuses an active `GET` journey whose id or path names one unless it says
//! `safe = true` (not its name: names describe expectations, "Rejects a request without a token"). Init checks
//! more than the profile check, so what init writes active always passes it.

/// Verbs that name a side effect wherever they stand as a whole word.
const ALWAYS: &[&str] = &[
    "uninstall",
    "install",
    "delete",
    "remove",
    "revoke",
    "purge",
    "reset",
    "logout",
    "logoff",
    "signout",
    "send",
    "share",
    "unshare",
    "destroy",
    "erase",
    "wipe",
    "terminate",
    "shutdown",
    "reboot",
    "restart",
    "kill",
    "deactivate",
    "activate",
    "disable",
    "enable",
    "unsubscribe",
    "archive",
    "unarchive",
    "kick",
    "ban",
    "unban",
    "invite",
    "invalidate",
    "truncate",
    "flush",
    "rotate",
    "regenerate",
    "approve",
    "reject",
    "cancel",
    "unlink",
    "publish",
    "unpublish",
    "trigger",
    "execute",
    "drop",
];

/// Verbs that are also nouns: a side effect only where they lead a compound name (`setPresence`, `post_message`).
const LEADING: &[&str] = &[
    "set",
    "post",
    "create",
    "update",
    "add",
    "put",
    "write",
    "run",
    "start",
    "stop",
    "close",
    "open",
    "join",
    "leave",
    "mark",
    "clear",
    "move",
    "rename",
    "upload",
    "pin",
    "unpin",
    "mute",
    "unmute",
    "end",
    "kick",
    "grant",
    "assign",
    "unassign",
    "lock",
    "unlock",
    "sync",
    "import",
    "refresh",
    "reindex",
    "login",
    "signin",
    "signup",
    "register",
    "subscribe",
];

/// The first word of `text` (an operation id or a path) naming a side effect, lowercase; path parameters
/// (`{name}`) are left out.
#[must_use]
pub fn side_effect_word(text: &str) -> Option<String> {
    // Path parameters (`{runId}`) name values, not actions.
    let mut plain = String::with_capacity(text.len());
    let mut depth = 0_usize;
    for c in text.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    for segment in plain.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')) {
        let words = words(segment);
        for (index, word) in words.iter().enumerate() {
            if ALWAYS.contains(&word.as_str())
                || (index == 0 && words.len() > 1 && LEADING.contains(&word.as_str()))
            {
                return Some(word.clone());
            }
        }
    }
    None
}

/// [`side_effect_word`] for prose (a summary or a journey name): every word is checked against the verbs that are
/// always a side effect, and the first word in its third-person form too (`Uninstalls`, `Sends`).
#[must_use]
pub fn side_effect_word_in_prose(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect();
    if let Some(first) = words.first() {
        let base = first
            .strip_suffix("es")
            .filter(|base| ALWAYS.contains(base) || LEADING.contains(base))
            .or_else(|| first.strip_suffix('s'))
            .unwrap_or(first);
        if ALWAYS.contains(&base) || LEADING.contains(&base) {
            return Some(base.to_owned());
        }
    }
    words
        .iter()
        .find(|word| ALWAYS.contains(&word.as_str()))
        .cloned()
}

/// Lowercase words of one name: split at `_` and `-` and before a capital that follows a lowercase letter or
/// digit (`setPresence` → `set`, `presence`; `HTMLPage` stays one word).
fn words(segment: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in segment.chars() {
        if c == '_' || c == '-' {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            previous_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && previous_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        current.push(c.to_ascii_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Media types of a streamed answer.
const STREAM_MEDIA: &[&str] = &[
    "text/event-stream",
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/json-seq",
    "application/stream+json",
];

/// Why a response media type is a stream, if it is one (`text/event-stream`, NDJSON, `;stream=watch`).
#[must_use]
pub fn streaming_media(media: &str) -> Option<String> {
    let lower = media.to_ascii_lowercase();
    let essence = lower.split(';').next().unwrap_or("").trim();
    if STREAM_MEDIA.contains(&essence) || lower.contains("stream=watch") {
        Some(format!("it answers with a stream ({media})"))
    } else {
        None
    }
}

/// Why a path is a stream, if it has a `watch` segment (Kubernetes' `/api/v1/watch/...`).
#[must_use]
pub fn streaming_path(template: &str) -> Option<String> {
    template
        .split('/')
        .any(|segment| segment.eq_ignore_ascii_case("watch"))
        .then(|| "its path has a `watch` segment (a stream)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_effect_words_match_whole_words_and_leading_verbs() {
        for (text, word) in [
            ("apps.uninstall", "uninstall"),
            ("/apps.uninstall", "uninstall"),
            ("auth.revoke", "revoke"),
            ("users.setPresence", "set"),
            ("chat.postMessage", "post"),
            ("create_user", "create"),
            ("/users/{id}/delete", "delete"),
            ("/logout", "logout"),
            ("resetPassword", "reset"),
            ("files.sharedPublicURL", "share"),
            ("/cache/purge-all", "purge"),
            ("DeleteThing", "delete"),
        ] {
            let found = side_effect_word(text);
            // `sharedPublicURL` is the exception that proves the whole-word rule: `shared` is not `share`.
            if text == "files.sharedPublicURL" {
                assert_eq!(found, None, "{text}");
            } else {
                assert_eq!(found.as_deref(), Some(word), "{text}");
            }
        }
    }

    #[test]
    fn look_alikes_are_not_side_effects() {
        for text in [
            "resetting-docs",
            "/deleted_items",
            "/sender-stats",
            "/posts",
            "/post/{id}",
            "getDataSet",
            "/settings",
            "listRuns",
            "/runs/{runId}",
            "getPost",
            "/installations",
            "/api/v1/namespaces/{namespace}/pods",
            "get-health",
            "/updates",
            "/created",
        ] {
            assert_eq!(side_effect_word(text), None, "{text}");
        }
    }

    #[test]
    fn prose_matches_the_leading_verb_in_third_person_and_strong_verbs_anywhere() {
        assert_eq!(
            side_effect_word_in_prose("Uninstalls your app from a workspace.").as_deref(),
            Some("uninstall")
        );
        assert_eq!(
            side_effect_word_in_prose("Sends a message").as_deref(),
            Some("send")
        );
        assert_eq!(
            side_effect_word_in_prose("Sets the user's presence").as_deref(),
            Some("set")
        );
        assert_eq!(
            side_effect_word_in_prose("Log out and revoke the token").as_deref(),
            Some("revoke")
        );
        for calm in [
            "List the pets",
            "Returns the deleted items",
            "Settings of the account",
            "Health check",
            "Get a post",
            "Shows whether a reset is pending, as a status",
        ] {
            let found = side_effect_word_in_prose(calm);
            if calm.contains("reset") {
                // `reset` is a strong verb: prose naming it anywhere is flagged, a safe read says `safe = true`.
                assert_eq!(found.as_deref(), Some("reset"), "{calm}");
            } else {
                assert_eq!(found, None, "{calm}");
            }
        }
    }

    #[test]
    fn streams_are_recognised_by_media_type_and_watch_segment() {
        assert!(streaming_media("text/event-stream").is_some());
        assert!(streaming_media("application/x-ndjson; charset=utf-8").is_some());
        assert!(streaming_media("application/json;stream=watch").is_some());
        assert!(streaming_media("application/json").is_none());
        assert!(streaming_path("/api/v1/watch/namespaces/{namespace}/pods").is_some());
        assert!(streaming_path("/watchers").is_none());
    }
}
