//! Text that Postgres can store, of a bounded size.
//!
//! Postgres refuses NUL in `text` ("invalid byte sequence") and `\u0000` in `jsonb`
//! ("unsupported Unicode escape sequence"), and one such value fails the whole statement — a
//! checkpoint batch of many runs included. Step errors and outputs come from outside (Job
//! logs, HTTP bodies, panics), so the engine cleans them once, where a step's result enters
//! it, before anything is written.

use serde_json::Value;

/// The longest error message kept (bytes); longer ones keep their head and tail.
pub const MAX_ERROR_BYTES: usize = 8 * 1024;

/// `s` without NUL characters (each becomes U+FFFD) and at most [`MAX_ERROR_BYTES`] long.
#[must_use]
pub fn for_postgres(s: &str) -> String {
    let clean = s.replace('\0', "\u{FFFD}");
    if clean.len() <= MAX_ERROR_BYTES {
        return clean;
    }
    let half = MAX_ERROR_BYTES / 2;
    let head_end = floor_char_boundary(&clean, half);
    let tail_start = ceil_char_boundary(&clean, clean.len() - half);
    format!(
        "{} … [{} bytes cut] … {}",
        &clean[..head_end],
        tail_start - head_end,
        &clean[tail_start..]
    )
}

/// `v` with NUL characters replaced in every string and key (sizes untouched: outputs are
/// the step's contract).
#[must_use]
pub fn json_for_postgres(v: Value) -> Value {
    match v {
        Value::String(s) if s.contains('\0') => Value::String(s.replace('\0', "\u{FFFD}")),
        Value::Array(a) => Value::Array(a.into_iter().map(json_for_postgres).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (k.replace('\0', "\u{FFFD}"), json_for_postgres(v)))
                .collect(),
        ),
        other => other,
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_is_replaced_and_long_text_keeps_head_and_tail() {
        assert_eq!(for_postgres("a\0b"), "a\u{FFFD}b");
        let long = format!("start{}é{}end", "x".repeat(10_000), "y".repeat(10_000));
        let cut = for_postgres(&long);
        assert!(cut.len() < MAX_ERROR_BYTES + 64, "{}", cut.len());
        assert!(cut.starts_with("startx") && cut.ends_with("yend"));
        assert!(cut.contains("bytes cut"));
        assert_eq!(for_postgres("short"), "short");
    }

    #[test]
    fn json_strings_and_keys_lose_their_nul() {
        let v = json!({"a\0": ["x\0y", 1, {"k": "\0"}], "n": null});
        assert_eq!(
            json_for_postgres(v),
            json!({"a\u{FFFD}": ["x\u{FFFD}y", 1, {"k": "\u{FFFD}"}], "n": null})
        );
    }
}
