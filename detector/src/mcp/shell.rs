//! Just enough shell to read the wrappers people put in MCP configs:
//! `bash -c "KEY=$(op read …) npx …"`, `sh -c 'export KEY=… && exec …'`, `env KEY=… npx …`.
//! Words are split the way a POSIX shell would for these cases (quotes, escapes, `$(…)` and
//! backticks kept whole); nothing is expanded or executed.

/// One word of a command line, unquoted, with whether it started a new command (after `;`,
/// `&&`, `||`, `|`, a newline or at the start) and whether any part of it was quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub command_start: bool,
}

/// Split a shell command line into words. Never fails: unbalanced quotes end at the end.
pub fn split(line: &str) -> Vec<Word> {
    let chars: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut command_start = true;
    let mut word_starts_command = true;
    let mut i = 0;

    let mut finish = |current: &mut String, in_word: &mut bool, starts: bool| {
        if *in_word {
            words.push(Word {
                text: std::mem::take(current),
                command_start: starts,
            });
            *in_word = false;
        }
    };

    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => {
                finish(&mut current, &mut in_word, word_starts_command);
                i += 1;
            }
            '\n' | ';' | '&' | '|' => {
                finish(&mut current, &mut in_word, word_starts_command);
                command_start = true;
                i += 1;
            }
            '\'' => {
                if !in_word {
                    word_starts_command = command_start;
                    command_start = false;
                }
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    current.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                if !in_word {
                    word_starts_command = command_start;
                    command_start = false;
                }
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() && "\"\\$`".contains(chars[i + 1]) {
                        current.push(chars[i + 1]);
                        i += 2;
                    } else if chars[i] == '$' && chars.get(i + 1) == Some(&'(') {
                        i = copy_substitution(&chars, i, &mut current);
                    } else {
                        current.push(chars[i]);
                        i += 1;
                    }
                }
                i += 1;
            }
            _ => {
                if !in_word {
                    word_starts_command = command_start;
                    command_start = false;
                }
                in_word = true;
                if c == '\\' && i + 1 < chars.len() {
                    current.push(chars[i + 1]);
                    i += 2;
                } else if c == '$' && chars.get(i + 1) == Some(&'(') {
                    i = copy_substitution(&chars, i, &mut current);
                } else if c == '`' {
                    current.push(c);
                    i += 1;
                    while i < chars.len() && chars[i] != '`' {
                        current.push(chars[i]);
                        i += 1;
                    }
                    if i < chars.len() {
                        current.push('`');
                    }
                    i += 1;
                } else {
                    current.push(c);
                    i += 1;
                }
            }
        }
    }
    finish(&mut current, &mut in_word, word_starts_command);
    words
}

/// Copy `$( … )` starting at `start` (the `$`), nested parentheses and quotes included;
/// returns the index after the closing parenthesis.
fn copy_substitution(chars: &[char], start: usize, out: &mut String) -> usize {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut i = start;
    while i < chars.len() {
        let c = chars[i];
        out.push(c);
        i += 1;
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
    }
    i
}

/// `NAME=value` as a shell assignment (the name is a shell identifier).
pub fn assignment(word: &str) -> Option<(&str, &str)> {
    let (name, value) = word.split_once('=')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    if !(first.is_ascii_alphabetic() || first == '_') {
        return None;
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    Some((name, value))
}

/// The assignments of a command line: leading `NAME=value` words of each command, and the
/// operands of `export`/`env`/`declare`/`local`/`readonly`.
pub fn assignments(words: &[Word]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut assigning = false;
    for word in words {
        if word.command_start {
            assigning = true;
        }
        if !assigning {
            continue;
        }
        if let Some((name, value)) = assignment(&word.text) {
            out.push((name.to_string(), value.to_string()));
        } else if matches!(
            word.text.as_str(),
            "export" | "env" | "declare" | "local" | "readonly" | "typeset"
        ) || word.text.starts_with('-')
        {
            // Keep reading assignments after the keyword and its options (`env -i A=1`).
        } else {
            assigning = false;
        }
    }
    out
}

/// The script of a shell wrapper: `sh -c SCRIPT`, `bash -lc SCRIPT`, `zsh -c SCRIPT`, … .
/// `argv[0]` is the program. Returns the index of the script in `argv`.
pub fn script_index(argv: &[&str]) -> Option<usize> {
    let program = argv.first()?;
    let base = program.rsplit('/').next().unwrap_or(program);
    if !matches!(
        base,
        "sh" | "bash" | "zsh" | "dash" | "ksh" | "fish" | "ash" | "busybox"
    ) {
        return None;
    }
    let mut i = 1;
    while i < argv.len() {
        let arg = argv[i];
        if arg == "sh" && base == "busybox" {
            i += 1;
            continue;
        }
        if arg.starts_with('-') && !arg.starts_with("--") && arg.contains('c') {
            return (i + 1 < argv.len()).then_some(i + 1);
        }
        if !arg.starts_with('-') {
            return None;
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &str) -> Vec<String> {
        split(line).into_iter().map(|w| w.text).collect()
    }

    #[test]
    fn splits_quotes_and_substitutions() {
        assert_eq!(
            texts(r#"KEY="$(op read "op://v/i/f")" npx -y 'a b'"#),
            vec![r#"KEY=$(op read "op://v/i/f")"#, "npx", "-y", "a b"]
        );
        assert_eq!(texts("a\\ b c"), vec!["a b", "c"]);
        assert_eq!(texts("X=`cat f` y"), vec!["X=`cat f`", "y"]);
        assert_eq!(texts("unterminated 'quote"), vec!["unterminated", "quote"]);
    }

    #[test]
    fn finds_assignments_of_each_command() {
        let words = split("export A=1 B=2 && C=3 run --x=4 D=5; env E=6 cmd");
        let found = assignments(&words);
        let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["A", "B", "C", "E"]);
    }

    #[test]
    fn finds_wrapper_script() {
        assert_eq!(script_index(&["bash", "-c", "x"]), Some(2));
        assert_eq!(script_index(&["/bin/sh", "-lc", "x"]), Some(2));
        assert_eq!(script_index(&["bash", "--login", "-c", "x"]), Some(3));
        assert_eq!(script_index(&["npx", "-c", "x"]), None);
        assert_eq!(script_index(&["bash", "script.sh"]), None);
    }
}
