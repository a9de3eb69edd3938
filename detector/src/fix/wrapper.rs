//! The seed's wrapper pattern: a small script that loads a server's keys from the store and
//! `exec`s the server's own command, for clients that expand no reference where the key was,
//! or that the desktop starts (their environment does not hold what a shell profile exports).
//! The script holds no key: each key in an argument or a variable is written as its name.
use std::path::{Path, PathBuf};

use super::destination::{sh_quote as quote, Destination};

/// A wrapper script to write.
pub struct Wrapper {
    pub path: PathBuf,
    pub text: String,
    pub server: String,
}

/// A name `sh` takes as a variable: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_shell_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Text for a `#` comment line: a line break (a config path or server name may hold one)
/// would end the comment and start a command.
fn comment(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// `value` as one shell word in which every key is its variable (`'Bearer '"${NAME}"`).
fn word(value: &str, keys: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = value;
    loop {
        let next = keys
            .iter()
            .filter_map(|(secret, name)| rest.find(secret.as_str()).map(|at| (at, secret, name)))
            .min_by_key(|(at, _, _)| *at);
        match next {
            Some((at, secret, name)) => {
                if at > 0 {
                    out.push_str(&quote(&rest[..at]));
                }
                out.push_str(&format!("\"${{{name}}}\""));
                rest = &rest[at + secret.len()..];
            }
            None => {
                if !rest.is_empty() || out.is_empty() {
                    out.push_str(&quote(rest));
                }
                return out;
            }
        }
    }
}

/// A file name part: letters, digits, `.`, `_` and `-`.
fn file_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect()
}

impl Wrapper {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        dir: &Path,
        client: &str,
        config: &Path,
        server: &str,
        command: &str,
        args: &[String],
        exports: &[(String, String)],
        keys: &[(String, String)],
        store: &Destination,
    ) -> Wrapper {
        let digest =
            ring::digest::digest(&ring::digest::SHA256, config.as_os_str().as_encoded_bytes());
        let tag = hex::encode(&digest.as_ref()[..3]);
        let path = dir.join(format!(
            "{}-{}-{tag}.sh",
            file_part(client),
            file_part(server)
        ));
        let names: Vec<&str> = keys.iter().map(|(_, name)| name.as_str()).collect();
        let mut text = String::from("#!/bin/sh\n");
        text.push_str(&format!(
            "# Written by `detector fix`: starts MCP server {} of {}\n# with its keys loaded from {}. It holds no key.\nset -e\n",
            comment(&quote(server)),
            comment(&quote(&config.display().to_string())),
            comment(&store.describe()),
        ));
        text.push_str(&store.shell_load(&names));
        if !text.ends_with('\n') {
            text.push('\n');
        }
        for (variable, value) in exports {
            text.push_str(&format!("export {variable}={}\n", word(value, keys)));
        }
        let mut line = format!("exec {}", quote(command));
        for arg in args {
            line.push(' ');
            line.push_str(&word(arg, keys));
        }
        line.push_str(" \"$@\"\n");
        text.push_str(&line);
        Wrapper {
            path,
            text,
            server: server.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_name_keys_and_quote_the_rest() {
        let keys = vec![("s3cr3tvalue".to_string(), "K".to_string())];
        assert_eq!(word("--key=s3cr3tvalue", &keys), "'--key='\"${K}\"");
        assert_eq!(word("s3cr3tvalue", &keys), "\"${K}\"");
        assert_eq!(word("it's", &keys), r"'it'\''s'");
        assert_eq!(word("", &keys), "''");
    }

    /// Names and paths from a config are data: a line break in a server's name or the
    /// config's path cannot end the comment and run as a command; an exported variable
    /// must be a shell name.
    #[test]
    fn names_from_the_config_cannot_become_commands() {
        let store = Destination::EnvFile(PathBuf::from("/s/keys.env"));
        let wrapper = Wrapper::new(
            Path::new("/w"),
            "cursor",
            Path::new("/p/evil\ntouch /tmp/pwned\n/mcp.json"),
            "gh\nrm -rf ~",
            "npx",
            &["-y".into()],
            &[],
            &[],
            &store,
        );
        for line in wrapper.text.lines() {
            assert!(
                line.starts_with('#')
                    || line.starts_with("set -e")
                    || line.starts_with(". ")
                    || line.starts_with("export ")
                    || line.starts_with("exec "),
                "a line a config wrote: {line:?}\n{}",
                wrapper.text
            );
        }
        assert!(!wrapper.path.to_string_lossy().contains('\n'));
        assert!(is_shell_name("GITHUB_TOKEN") && is_shell_name("_x1"));
        assert!(!is_shell_name("A;rm") && !is_shell_name("1A") && !is_shell_name(""));
    }
}
