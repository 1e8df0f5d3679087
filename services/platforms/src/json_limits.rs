//! Bounds on every JSON body a platform decodes, checked by one linear scan before serde sees
//! the bytes: nesting depth and the number of values. serde_json's own recursion limit (128)
//! keeps the stack safe; these keep a decoded body's size in proportion to what platforms
//! really send, and name the limit in the 400 when a body is past it.

use crate::InboundError;

/// The deepest nesting accepted. The deepest payloads platforms send (a OneBot forward node
/// holding segments holding a forward) are under 16 levels.
pub const MAX_DEPTH: usize = 64;
/// The most values (objects, arrays, and the members between commas) accepted in one body.
/// A long OneBot message of a few thousand segments is well under it.
pub const MAX_VALUES: usize = 100_000;

/// Checks `body` against [`MAX_DEPTH`] and [`MAX_VALUES`] without building anything. Whether
/// it is valid JSON is left to the decoder that runs next.
///
/// # Errors
/// [`InboundError::OverLimit`] naming the limit.
pub fn check(body: &[u8]) -> Result<(), InboundError> {
    let mut depth = 0usize;
    let mut values = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in body {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                values += 1;
                if depth > MAX_DEPTH {
                    return Err(InboundError::OverLimit(format!(
                        "JSON nested deeper than the limit of {MAX_DEPTH} levels"
                    )));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' => values += 1,
            _ => continue,
        }
        if values > MAX_VALUES {
            return Err(InboundError::OverLimit(format!(
                "JSON over the limit of {MAX_VALUES} values"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_bodies_pass_and_strings_do_not_count() {
        check(br#"{"a":[1,2,{"b":"[[[[,,,,{{{{\"]]]"}]}"#).expect("ordinary");
        let deep_in_a_string = format!(r#"{{"t":"{}"}}"#, "[".repeat(10_000));
        check(deep_in_a_string.as_bytes()).expect("brackets in a string are text");
    }

    #[test]
    fn depth_and_values_past_their_limits_are_named() {
        let deep = "[".repeat(MAX_DEPTH + 1);
        let error = check(deep.as_bytes()).expect_err("deep");
        assert!(
            error.to_string().contains("deeper than the limit of 64"),
            "{error}"
        );
        assert_eq!(error.status(), http::StatusCode::BAD_REQUEST);
        let wide = format!("[{}0]", "0,".repeat(MAX_VALUES + 1));
        let error = check(wide.as_bytes()).expect_err("wide");
        assert!(
            error.to_string().contains("limit of 100000 values"),
            "{error}"
        );
        check("[".repeat(MAX_DEPTH).as_bytes()).expect("at the limit");
    }
}
