//! detector's own managed store: the env file `detector fix` moves keys into. Its first line
//! says so, and that line is how the scanner tells the store (keys held, not exposed) from an
//! ordinary env file, and how `detector fix` tells its own file from one it must not touch.
//! One definition for both, here, where sources decide what a file is.

/// The first line of a managed env file.
pub const HEADER: &str =
    "# detector managed store v1: keys moved here by `detector fix`. Keep it out of git; mode 0600.";

/// True when `bytes` begin with [`HEADER`] as a whole line (a line break or the end follows;
/// a CRLF line counts). The header on any later line does not make a file a store.
pub fn is_managed_store(bytes: &[u8]) -> bool {
    let Some(rest) = bytes.strip_prefix(HEADER.as_bytes()) else {
        return false;
    };
    matches!(rest, [] | [b'\n', ..] | [b'\r', b'\n', ..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_line_counts() {
        assert!(is_managed_store(format!("{HEADER}\nA='b'\n").as_bytes()));
        assert!(is_managed_store(
            format!("{HEADER}\r\nA='b'\r\n").as_bytes()
        ));
        assert!(is_managed_store(HEADER.as_bytes()));
        assert!(!is_managed_store(format!("\n{HEADER}\n").as_bytes()));
        assert!(!is_managed_store(format!("A='b'\n{HEADER}\n").as_bytes()));
        assert!(!is_managed_store(format!("{HEADER} and more\n").as_bytes()));
        assert!(!is_managed_store(format!(" {HEADER}\n").as_bytes()));
        assert!(!is_managed_store(b""));
    }
}
