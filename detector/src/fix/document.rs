//! Edits to a config document that keep everything the edit does not touch: comments, order,
//! spacing, quoting. An edit is a list of [`Op`]s on document paths; each format applies them
//! to its own text (JSON and JSONC through a concrete syntax tree, TOML through `toml_edit`,
//! YAML as scalar replacements), and the result must parse to exactly the document the ops
//! make of the old one, or the edit is refused.
use serde_json::Value;

use crate::mcp::{parse::parse_document, ConfigFormat};

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seg {
    Key(String),
    Index(usize),
}

pub type DocPath = Vec<Seg>;

/// A path as people read it: `mcpServers.github.env.GITHUB_TOKEN`, `args[2]`.
pub fn display(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// One change to a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// The string at the path becomes this one.
    SetString(DocPath, String),
    /// In the string at the path, every `part` becomes `with` (a key becomes its reference).
    Replace {
        path: DocPath,
        part: String,
        with: String,
    },
    /// The list at the path becomes empty (the arguments of a server started by a wrapper).
    ClearList(DocPath),
    /// The map entry at the path goes.
    Remove(DocPath),
    /// A value (a name; VS Code's input definition) is added to the end of the list at the
    /// path (made when missing).
    Append(DocPath, Value),
    /// The map entry at the path (made when missing, with its map) holds this string.
    Insert(DocPath, String),
}

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("does not parse: {0}")]
    Parse(String),
    #[error("{0} is not where the edit expects it")]
    Missing(String),
    #[error("{0} cannot be edited in {1} files without reformatting them")]
    Unsupported(String, &'static str),
    #[error("the edited file would not read as intended (it would change more than the keys); left as it is")]
    Unverified,
}

/// Every string of `value` that holds `needle`, by path.
pub fn strings_holding(value: &Value, needle: &str) -> Vec<DocPath> {
    fn walk(value: &Value, needle: &str, path: &mut DocPath, out: &mut Vec<DocPath>) {
        match value {
            Value::String(s) if s.contains(needle) => out.push(path.clone()),
            Value::Object(map) => {
                for (k, v) in map {
                    path.push(Seg::Key(k.clone()));
                    walk(v, needle, path, out);
                    path.pop();
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    path.push(Seg::Index(i));
                    walk(v, needle, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, needle, &mut Vec::new(), &mut out);
    out
}

pub fn get<'v>(value: &'v Value, path: &[Seg]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, seg| match seg {
        Seg::Key(k) => v.as_object()?.get(k),
        Seg::Index(i) => v.as_array()?.get(*i),
    })
}

fn get_mut<'v>(value: &'v mut Value, path: &[Seg]) -> Option<&'v mut Value> {
    path.iter().try_fold(value, |v, seg| match seg {
        Seg::Key(k) => v.as_object_mut()?.get_mut(k),
        Seg::Index(i) => v.as_array_mut()?.get_mut(*i),
    })
}

fn split_last(path: &[Seg]) -> Result<(&[Seg], &str), EditError> {
    match path.split_last() {
        Some((Seg::Key(k), parent)) => Ok((parent, k)),
        _ => Err(EditError::Missing(display(path))),
    }
}

/// The document the ops make of `value`.
pub fn apply_to_value(value: &mut Value, ops: &[Op]) -> Result<(), EditError> {
    let missing = |path: &[Seg]| EditError::Missing(display(path));
    for op in ops {
        match op {
            Op::SetString(path, s) => {
                let at = get_mut(value, path).ok_or_else(|| missing(path))?;
                *at = Value::String(s.clone());
            }
            Op::Replace { path, part, with } => {
                let at = get_mut(value, path).ok_or_else(|| missing(path))?;
                let old = at.as_str().ok_or_else(|| missing(path))?;
                *at = Value::String(old.replace(part.as_str(), with));
            }
            Op::ClearList(path) => {
                let at = get_mut(value, path).ok_or_else(|| missing(path))?;
                *at = Value::Array(Vec::new());
            }
            Op::Remove(path) => {
                let (parent, key) = split_last(path)?;
                get_mut(value, parent)
                    .and_then(Value::as_object_mut)
                    .and_then(|m| m.remove(key))
                    .ok_or_else(|| missing(path))?;
            }
            Op::Append(path, s) => {
                let (parent, key) = split_last(path)?;
                let map = get_mut(value, parent)
                    .and_then(Value::as_object_mut)
                    .ok_or_else(|| missing(parent))?;
                let list = map
                    .entry(key.to_string())
                    .or_insert_with(|| Value::Array(Vec::new()));
                list.as_array_mut()
                    .ok_or_else(|| missing(path))?
                    .push(s.clone());
            }
            Op::Insert(path, s) => {
                let (parent, key) = split_last(path)?;
                let (grand, table) = split_last(parent)?;
                let outer = get_mut(value, grand)
                    .and_then(Value::as_object_mut)
                    .ok_or_else(|| missing(grand))?;
                let map = outer
                    .entry(table.to_string())
                    .or_insert_with(|| Value::Object(Default::default()));
                map.as_object_mut()
                    .ok_or_else(|| missing(parent))?
                    .insert(key.to_string(), Value::String(s.clone()));
            }
        }
    }
    Ok(())
}

/// `text` with the ops applied, checked: it parses to what the ops make of the old document.
pub fn edit(format: ConfigFormat, text: &str, ops: &[Op]) -> Result<String, EditError> {
    let parse =
        |t: &str| parse_document(format, t.as_bytes()).map_err(|e| EditError::Parse(e.to_string()));
    let mut expected = parse(text)?;
    apply_to_value(&mut expected, ops)?;
    let edited = match format {
        ConfigFormat::Json | ConfigFormat::Jsonc => json::apply(text, ops)?,
        ConfigFormat::Toml => toml::apply(text, ops)?,
        ConfigFormat::Yaml => yaml::apply(text, ops)?,
        // Markdown around the front matter: only keys are replaced in place.
        ConfigFormat::Frontmatter => {
            match ops.iter().find(|op| !matches!(op, Op::Replace { .. })) {
                Some(
                    Op::SetString(path, _)
                    | Op::ClearList(path)
                    | Op::Remove(path)
                    | Op::Append(path, _)
                    | Op::Insert(path, _),
                ) => {
                    return Err(EditError::Unsupported(
                        display(path),
                        "Markdown front matter",
                    ))
                }
                _ => ops.iter().fold(text.to_string(), |out, op| match op {
                    Op::Replace { part, with, .. } => out.replace(part.as_str(), with),
                    _ => out,
                }),
            }
        }
    };
    if parse(&edited)? != expected {
        return Err(EditError::Unverified);
    }
    Ok(edited)
}

mod json {
    //! JSON and JSONC through jsonc-parser's concrete syntax tree: a node replaced or removed
    //! keeps the comments and spacing around it.
    use jsonc_parser::cst::{CstInputValue, CstNode, CstRootNode};

    use super::{display, split_last, EditError, Op, Seg};

    fn options() -> jsonc_parser::ParseOptions {
        jsonc_parser::ParseOptions {
            allow_comments: true,
            allow_loose_object_property_names: true,
            allow_trailing_commas: true,
        }
    }

    fn input(value: &serde_json::Value) -> CstInputValue {
        use serde_json::Value;
        match value {
            Value::Null => CstInputValue::Null,
            Value::Bool(b) => CstInputValue::Bool(*b),
            Value::Number(n) => CstInputValue::Number(n.to_string()),
            Value::String(s) => CstInputValue::String(s.clone()),
            Value::Array(items) => CstInputValue::Array(items.iter().map(input).collect()),
            Value::Object(map) => {
                CstInputValue::Object(map.iter().map(|(k, v)| (k.clone(), input(v))).collect())
            }
        }
    }

    fn node(root: &CstRootNode, path: &[Seg]) -> Option<CstNode> {
        let mut at = root.value()?;
        for seg in path {
            at = match seg {
                Seg::Key(k) => at.as_object()?.get(k)?.value()?,
                Seg::Index(i) => at.as_array()?.elements().get(*i)?.clone(),
            };
        }
        Some(at)
    }

    pub fn apply(text: &str, ops: &[Op]) -> Result<String, EditError> {
        let root =
            CstRootNode::parse(text, &options()).map_err(|e| EditError::Parse(e.to_string()))?;
        let missing = |path: &[Seg]| EditError::Missing(display(path));
        for op in ops {
            match op {
                Op::SetString(path, s) => {
                    let at = node(&root, path).ok_or_else(|| missing(path))?;
                    at.as_string_lit()
                        .ok_or_else(|| missing(path))?
                        .replace_with(CstInputValue::String(s.clone()));
                }
                Op::Replace { path, part, with } => {
                    let at = node(&root, path).ok_or_else(|| missing(path))?;
                    let string = at.as_string_lit().ok_or_else(|| missing(path))?;
                    let old = string.decoded_value().map_err(|_| missing(path))?;
                    string.replace_with(CstInputValue::String(old.replace(part.as_str(), with)));
                }
                Op::ClearList(path) => {
                    let at = node(&root, path).ok_or_else(|| missing(path))?;
                    let list = at.as_array().ok_or_else(|| missing(path))?;
                    for element in list.elements() {
                        element.remove();
                    }
                }
                Op::Remove(path) => {
                    let (parent, key) = split_last(path)?;
                    node(&root, parent)
                        .and_then(|n| n.as_object())
                        .and_then(|o| o.get(key))
                        .ok_or_else(|| missing(path))?
                        .remove();
                }
                Op::Append(path, s) => {
                    let (parent, key) = split_last(path)?;
                    let object = node(&root, parent)
                        .and_then(|n| n.as_object())
                        .ok_or_else(|| missing(parent))?;
                    object
                        .array_value_or_create(key)
                        .ok_or_else(|| missing(path))?
                        .append(input(s));
                }
                Op::Insert(path, s) => {
                    let (parent, key) = split_last(path)?;
                    let (grand, table) = split_last(parent)?;
                    let object = node(&root, grand)
                        .and_then(|n| n.as_object())
                        .ok_or_else(|| missing(grand))?
                        .object_value_or_create(table)
                        .ok_or_else(|| missing(parent))?;
                    match object.get(key) {
                        Some(prop) => prop.set_value(CstInputValue::String(s.clone())),
                        None => {
                            object.append(key, CstInputValue::String(s.clone()));
                        }
                    }
                }
            }
        }
        Ok(root.to_string())
    }
}

mod toml {
    //! TOML through `toml_edit`: the document model keeps comments, order and formatting.
    use toml_edit::{Array, DocumentMut, Item, Value as TomlValue};

    use super::{display, split_last, EditError, Op, Seg};

    fn item_mut<'d>(doc: &'d mut DocumentMut, path: &[Seg]) -> Option<&'d mut Item> {
        let mut at = doc.as_item_mut();
        for seg in path {
            at = match seg {
                Seg::Key(k) => at.get_mut(k.as_str())?,
                Seg::Index(i) => at.get_mut(*i)?,
            };
        }
        Some(at)
    }

    /// Keep the old value's decor (spacing, trailing comment) on its replacement.
    fn replace(item: &mut Item, mut value: TomlValue) {
        if let Some(old) = item.as_value() {
            *value.decor_mut() = old.decor().clone();
        }
        *item = Item::Value(value);
    }

    pub fn apply(text: &str, ops: &[Op]) -> Result<String, EditError> {
        let mut doc: DocumentMut = text
            .parse()
            .map_err(|e: toml_edit::TomlError| EditError::Parse(e.message().to_string()))?;
        let missing = |path: &[Seg]| EditError::Missing(display(path));
        for op in ops {
            match op {
                Op::SetString(path, s) => {
                    let item = item_mut(&mut doc, path).ok_or_else(|| missing(path))?;
                    replace(item, TomlValue::from(s.as_str()));
                }
                Op::Replace { path, part, with } => {
                    let item = item_mut(&mut doc, path).ok_or_else(|| missing(path))?;
                    let old = item.as_str().ok_or_else(|| missing(path))?;
                    let new = old.replace(part.as_str(), with);
                    replace(item, TomlValue::from(new));
                }
                Op::ClearList(path) => {
                    let item = item_mut(&mut doc, path).ok_or_else(|| missing(path))?;
                    replace(item, TomlValue::Array(Array::new()));
                }
                Op::Remove(path) => {
                    let (parent, key) = split_last(path)?;
                    let table = item_mut(&mut doc, parent)
                        .and_then(Item::as_table_like_mut)
                        .ok_or_else(|| missing(parent))?;
                    table.remove(key).ok_or_else(|| missing(path))?;
                }
                Op::Append(path, s) => {
                    let s = s
                        .as_str()
                        .ok_or_else(|| EditError::Unsupported(display(path), "TOML"))?;
                    let (parent, key) = split_last(path)?;
                    let table = item_mut(&mut doc, parent)
                        .and_then(Item::as_table_like_mut)
                        .ok_or_else(|| missing(parent))?;
                    if table.get(key).is_none() {
                        table.insert(key, Item::Value(TomlValue::Array(Array::new())));
                    }
                    table
                        .get_mut(key)
                        .and_then(Item::as_array_mut)
                        .ok_or_else(|| missing(path))?
                        .push(s);
                }
                Op::Insert(path, s) => {
                    let (parent, key) = split_last(path)?;
                    let (grand, name) = split_last(parent)?;
                    let outer = item_mut(&mut doc, grand)
                        .and_then(Item::as_table_like_mut)
                        .ok_or_else(|| missing(grand))?;
                    if outer.get(name).is_none() {
                        outer.insert(
                            name,
                            Item::Value(TomlValue::InlineTable(Default::default())),
                        );
                    }
                    outer
                        .get_mut(name)
                        .and_then(Item::as_table_like_mut)
                        .ok_or_else(|| missing(parent))?
                        .insert(key, Item::Value(TomlValue::from(s.as_str())));
                }
            }
        }
        Ok(doc.to_string())
    }
}

mod yaml {
    //! YAML has no format-keeping editor among the crates we use, so edits work on lines of
    //! block-style YAML, the way people write configs: a key is replaced in the text where it
    //! stands; an entry is found by its key at its block's indentation (a list item by its
    //! `- `) and replaced, emptied, removed or added as whole lines. Flow style or anything
    //! else this does not read is refused, and [`super::edit`] checks that the text still
    //! reads as intended, so a misreading is refused too, never written.
    use super::{display, EditError, Op, Seg};

    /// One line: where it starts and ends (without its newline), its indentation, and where
    /// its content starts once a list item's `- ` is read as indentation.
    #[derive(Clone, Copy)]
    struct Line {
        start: usize,
        end: usize,
        indent: usize,
    }

    fn lines(text: &str) -> Vec<Line> {
        let mut out = Vec::new();
        let mut start = 0;
        for piece in text.split_inclusive('\n') {
            let body = piece.trim_end_matches(['\n', '\r']);
            let indent = body.len() - body.trim_start_matches(' ').len();
            out.push(Line {
                start,
                end: start + body.len(),
                indent,
            });
            start += piece.len();
        }
        out
    }

    fn blank(text: &str, line: &Line) -> bool {
        let body = text[line.start..line.end].trim();
        body.is_empty() || body.starts_with('#')
    }

    /// A node: the line that holds its key (or `- `), the column where its own content starts
    /// on that line, and the lines of its block (exclusive end).
    #[derive(Clone, Copy)]
    struct Node {
        line: usize,
        column: usize,
        indent: usize,
        end: usize,
    }

    /// The end of the block under a key or item at `indent` that starts on line `at`.
    fn block_end(text: &str, all: &[Line], at: usize, indent: usize) -> usize {
        let mut end = at + 1;
        while end < all.len() && (blank(text, &all[end]) || all[end].indent > indent) {
            end += 1;
        }
        // Trailing blank lines and comments belong to what follows.
        while end > at + 1 && blank(text, &all[end - 1]) {
            end -= 1;
        }
        end
    }

    fn key_matches(content: &str, key: &str) -> Option<usize> {
        for quoted in [key.to_string(), format!("\"{key}\""), format!("'{key}'")] {
            if let Some(rest) = content.strip_prefix(quoted.as_str()) {
                let rest_trimmed = rest.trim_start_matches(' ');
                if let Some(after) = rest_trimmed.strip_prefix(':') {
                    if after.is_empty() || after.starts_with([' ', '\t']) {
                        return Some(content.len() - after.len());
                    }
                }
            }
        }
        None
    }

    /// The children of `parent` (the root when None): each line at the block's indentation.
    fn find(text: &str, all: &[Line], parent: Option<Node>, seg: &Seg) -> Option<Node> {
        let (first, end, inline) = match parent {
            None => (0, all.len(), None),
            Some(p) => {
                // A list item's first key sits on the item's own line, after `- `.
                let inline = (p.column < all[p.line].end - all[p.line].start).then_some(p);
                (p.line + 1, p.end, inline)
            }
        };
        let mut candidates: Vec<(usize, usize)> = Vec::new(); // (line, column)
        if let Some(p) = inline {
            candidates.push((p.line, p.column));
        }
        let block_indent = (first..end)
            .filter(|&i| !blank(text, &all[i]))
            .map(|i| all[i].indent)
            .next();
        if let Some(indent) = block_indent {
            candidates.extend(
                (first..end)
                    .filter(|&i| !blank(text, &all[i]) && all[i].indent == indent)
                    .map(|i| (i, indent)),
            );
        }
        match seg {
            Seg::Key(key) => candidates.into_iter().find_map(|(i, column)| {
                let line = &all[i];
                let content = &text[line.start + column..line.end];
                let after = key_matches(content, key)?;
                let value_column = column + after;
                Some(Node {
                    line: i,
                    column: value_column,
                    indent: column,
                    end: block_end(text, all, i, column),
                })
            }),
            Seg::Index(n) => candidates
                .into_iter()
                .filter(|(i, column)| {
                    let line = &all[*i];
                    let content = &text[line.start + column..line.end];
                    content == "-" || content.starts_with("- ")
                })
                .nth(*n)
                .map(|(i, column)| {
                    let line = &all[i];
                    let content = &text[line.start + column..line.end];
                    let skip = content.len() - content[1..].trim_start_matches(' ').len();
                    Node {
                        line: i,
                        column: column + skip,
                        indent: column,
                        end: block_end(text, all, i, column),
                    }
                }),
        }
    }

    fn locate(text: &str, all: &[Line], path: &[Seg]) -> Result<Node, EditError> {
        let mut at: Option<Node> = None;
        for seg in path {
            at = Some(
                find(text, all, at, seg)
                    .ok_or_else(|| EditError::Unsupported(display(path), "YAML"))?,
            );
        }
        at.ok_or_else(|| EditError::Unsupported(display(path), "YAML"))
    }

    /// The value text on a node's own line: from its column to a comment.
    fn value_span(text: &str, line: &Line, column: usize) -> (usize, usize) {
        let start = line.start + column;
        let body = &text[start..line.end];
        let lead = body.len() - body.trim_start().len();
        let value = &body[lead..];
        let cut = if value.starts_with(['"', '\'']) {
            value.len()
        } else {
            value.find(" #").unwrap_or(value.len())
        };
        (start + lead, start + lead + value[..cut].trim_end().len())
    }

    /// A YAML double-quoted scalar: JSON's string syntax is one.
    fn scalar(s: &str) -> String {
        serde_json::to_string(s).unwrap_or_default()
    }

    /// Text edits (byte range → replacement), applied from the end.
    type Splice = (usize, usize, String);

    fn splice_op(
        text: &str,
        all: &[Line],
        op: &Op,
        document: &serde_json::Value,
    ) -> Result<Vec<Splice>, EditError> {
        let unsupported = |path: &[Seg]| EditError::Unsupported(display(path), "YAML");
        Ok(match op {
            Op::Replace { .. } => Vec::new(),
            Op::SetString(path, s) => {
                let node = locate(text, all, path)?;
                if node.end > node.line + 1 {
                    return Err(unsupported(path));
                }
                let (from, to) = value_span(text, &all[node.line], node.column);
                vec![(from, to, scalar(s))]
            }
            Op::ClearList(path) => {
                let node = locate(text, all, path)?;
                let (from, to) = value_span(text, &all[node.line], node.column);
                // `key:` with its list below gets a space before the `[]`.
                let empty = if from == to { " []" } else { "[]" };
                let mut out = vec![(from, to, empty.to_string())];
                if node.end > node.line + 1 {
                    out.push((all[node.line].end, all[node.end - 1].end, String::new()));
                }
                out
            }
            Op::Remove(path) => {
                let node = locate(text, all, path)?;
                let parent = &path[..path.len() - 1];
                let siblings = super::get(document, parent)
                    .and_then(serde_json::Value::as_object)
                    .map_or(0, |m| m.len());
                if all[node.line].start + node.indent
                    != all[node.line].start + (all[node.line].indent)
                {
                    // The first key of a list item: removing its line would remove the item.
                    return Err(unsupported(path));
                }
                let from = all[node.line].start;
                let to = if node.end < all.len() {
                    all[node.end].start
                } else {
                    text.len()
                };
                let mut out = vec![(from, to, String::new())];
                if siblings == 1 {
                    let parent_node = locate(text, all, parent)?;
                    let line = &all[parent_node.line];
                    let (a, b) = value_span(text, line, parent_node.column);
                    if a != b {
                        return Err(unsupported(path));
                    }
                    out.push((a, b, " {}".to_string()));
                }
                out
            }
            Op::Append(path, s) => {
                let parent_path = &path[..path.len() - 1];
                let Some(Seg::Key(key)) = path.last() else {
                    return Err(unsupported(path));
                };
                let Some(s) = s.as_str() else {
                    return Err(unsupported(path));
                };
                let existing = super::get(document, path);
                match existing {
                    Some(serde_json::Value::Array(items)) => {
                        let node = locate(text, all, path)?;
                        if node.end > node.line + 1 {
                            // A block list: one more item after the last, as the others are.
                            let item = &all[node.line + 1];
                            let line = format!("\n{}- {}", " ".repeat(item.indent), scalar(s));
                            let at = all[node.end - 1].end;
                            vec![(at, at, line)]
                        } else {
                            let (from, to) = value_span(text, &all[node.line], node.column);
                            let mut list: Vec<serde_json::Value> = items.clone();
                            list.push(serde_json::Value::String(s.to_string()));
                            let flow = serde_json::to_string(&list).unwrap_or_default();
                            let flow = if from == to { format!(" {flow}") } else { flow };
                            vec![(from, to, flow)]
                        }
                    }
                    None => {
                        let parent = locate(text, all, parent_path)?;
                        if parent.end <= parent.line + 1 {
                            return Err(unsupported(path));
                        }
                        let child = &all[parent.line + 1..parent.end]
                            .iter()
                            .find(|l| !blank(text, l))
                            .copied()
                            .ok_or_else(|| unsupported(path))?;
                        let line = format!("\n{}{key}: [{}]", " ".repeat(child.indent), scalar(s));
                        let at = all[parent.end - 1].end;
                        vec![(at, at, line)]
                    }
                    Some(_) => return Err(unsupported(path)),
                }
            }
            Op::Insert(path, _) => return Err(unsupported(path)),
        })
    }

    pub fn apply(text: &str, ops: &[Op]) -> Result<String, EditError> {
        // Structural edits first, located in the text as it was; then the keys replaced.
        let document = super::super::document::parse_yaml(text)?;
        let all = lines(text);
        let mut splices: Vec<Splice> = Vec::new();
        for op in ops {
            splices.extend(splice_op(text, &all, op, &document)?);
        }
        splices.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
        let mut out = text.to_string();
        let mut limit = usize::MAX;
        for (from, to, with) in splices {
            if to > limit {
                return Err(EditError::Unverified);
            }
            out.replace_range(from..to, &with);
            limit = from;
        }
        for op in ops {
            if let Op::Replace { part, with, .. } = op {
                out = out.replace(part.as_str(), with);
            }
        }
        Ok(out)
    }
}

/// The YAML document, for edits that must know what a list or map holds.
fn parse_yaml(text: &str) -> Result<Value, EditError> {
    parse_document(ConfigFormat::Yaml, text.as_bytes()).map_err(|e| EditError::Parse(e.to_string()))
}
