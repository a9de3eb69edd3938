//! Text from scanned input, made safe to show on a terminal or in Markdown: a file name can
//! hold escape sequences (colours, title writes, cursor moves), carriage returns that hide what
//! came before, or bidirectional overrides that show text in another order than it is. One
//! function makes every such character visible, for every writer whose output is read as text.
use std::borrow::Cow;

use serde_json::Value;

use super::Report;

/// `text` with control characters (C0 but space, DEL, C1), bidirectional controls and the
/// line and paragraph separators written as escapes (`\x1b`, `\r`, `\u{202e}`), so that what
/// is printed is what the text holds.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) && (c as u32) < 0x100 => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// A copy of `report` with every string made [`visible`], for the text and Markdown writers:
/// applied to the whole report at once, so no field can be forgotten, today's or tomorrow's.
pub fn report(report: &Report) -> Report {
    let Ok(mut value) = serde_json::to_value(report) else {
        return report.clone();
    };
    escape_strings(&mut value);
    serde_json::from_value(value).unwrap_or_else(|_| report.clone())
}

fn escape_strings(value: &mut Value) {
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        match value {
            Value::String(text) => {
                if let Cow::Owned(escaped) = visible(text) {
                    *text = escaped;
                }
            }
            Value::Array(items) => pending.extend(items.iter_mut()),
            Value::Object(fields) => pending.extend(fields.values_mut()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown_not_obeyed() {
        assert_eq!(visible("/home/al/.env"), "/home/al/.env");
        assert_eq!(
            visible("a\u{1b}[31mred\rover\nline\u{7f}"),
            "a\\x1b[31mred\\rover\\nline\\x7f"
        );
        assert_eq!(visible("x\u{202e}txt.exe"), "x\\u{202e}txt.exe");
        assert_eq!(visible("\u{9b}2J"), "\\x9b2J");
        assert_eq!(visible("naïve ünïcode"), "naïve ünïcode");
    }
}
