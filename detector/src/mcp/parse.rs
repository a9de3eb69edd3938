//! Reading a client config: the document (JSON, JSONC, TOML, YAML), its servers, the
//! secret-bearing fields of each server, and the seed checks.
//!
//! A file that does not parse yields its error and no servers; the caller still scans its
//! bytes as text, so a broken config never hides a key.
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::detect::value::{classify, ValueClass};

use super::catalogue::{ConfigFormat, ServerLayout};
use super::discover::{ConfigRef, ConfigScope};
use super::fields::{looks_like_server, server_parts};

/// One parsed config file.
#[derive(Debug, Clone, Serialize)]
pub struct ParsedConfig {
    pub client: &'static str,
    pub path: PathBuf,
    pub servers: Vec<McpServer>,
    /// Secret fields of the file outside its MCP servers, as the catalogue names them for the
    /// client (an LLM provider's `apiKey`), by their dotted path.
    pub fields: Vec<SecretField>,
    /// Set when the file did not parse (then `servers` is empty).
    pub parse_error: Option<String>,
}

/// One MCP server as configured in one file.
#[derive(Debug, Clone, Serialize)]
pub struct McpServer {
    pub client: String,
    pub config: PathBuf,
    pub name: String,
    /// The project directory for project-scoped entries (a project config file, or
    /// `projects.<dir>` of `~/.claude.json`); `None` for user-wide servers.
    pub project: Option<String>,
    /// The user whose global config defines the server; `None` for project config files.
    pub user: Option<String>,
    /// `stdio`, `http` or `sse`.
    pub transport: String,
    /// The program only (`npx`, `docker`, `/usr/bin/uvx`): arguments may carry secrets.
    pub command: Option<String>,
    /// The whole command line (program first, leading `KEY=value` words dropped), to recognise
    /// the server's process. Never serialized: arguments may carry secrets.
    #[serde(skip)]
    pub argv: Vec<String>,
    /// `scheme://host[:port]` of a remote server, without credentials, path or query.
    pub url: Option<String>,
    pub fields: Vec<SecretField>,
    /// Every string of the definition by its path ([`super::fields`]), to attribute a key that
    /// no secret field holds. Never serialized: values may be secrets.
    #[serde(skip)]
    pub values: Vec<(String, String)>,
    /// The catalogue's entry for the server it runs ([`super::servers::identify`]).
    #[serde(skip)]
    pub known: Option<&'static super::servers::KnownServer>,
    pub checks: Vec<ServerCheck>,
}

/// A secret-bearing value of a server.
#[derive(Debug, Clone, Serialize)]
pub struct SecretField {
    /// The slot: `env.OPENAI_API_KEY`, `headers.Authorization`, `args[3]`, `url?apiKey`,
    /// `command:GITHUB_TOKEN`.
    pub field: String,
    /// The configured value, verbatim. Never serialized: the report writer decides.
    #[serde(skip)]
    pub value: String,
    pub class: ValueClass,
    /// The variable, header, flag or parameter name (`OPENAI_API_KEY`, `Authorization`).
    pub name: Option<String>,
}

/// The result of one seed check on one server.
#[derive(Debug, Clone, Serialize)]
pub struct ServerCheck {
    /// `env-injection`, `secret-manager` or `per-project-key`.
    pub check: &'static str,
    pub pass: bool,
    pub reason: String,
}

pub const CHECK_ENV_INJECTION: &str = "env-injection";
pub const CHECK_SECRET_MANAGER: &str = "secret-manager";
pub const CHECK_PER_PROJECT_KEY: &str = "per-project-key";

impl McpServer {
    /// Fields whose value is the secret itself, in clear.
    pub fn literal_fields(&self) -> impl Iterator<Item = &SecretField> {
        self.fields
            .iter()
            .filter(|f| f.class == ValueClass::Literal)
    }

    /// The scope a key of this server belongs to: its project, else its user.
    pub fn scope_key(&self) -> String {
        match (&self.project, &self.user) {
            (Some(project), _) => format!("project:{project}"),
            (None, Some(user)) => format!("user:{user}"),
            (None, None) => format!("config:{}", self.config.display()),
        }
    }

    pub fn check(&self, name: &str) -> Option<&ServerCheck> {
        self.checks.iter().find(|c| c.check == name)
    }
}

/// Parse one config file. Never panics: a file that does not parse yields `parse_error`.
pub fn parse(config: &ConfigRef, bytes: &[u8]) -> ParsedConfig {
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse_inner(config, bytes)));
    let ((servers, fields), parse_error) = match outcome {
        Ok(Ok(parsed)) => (parsed, None),
        Ok(Err(error)) => ((Vec::new(), Vec::new()), Some(error.to_string())),
        Err(_) => (
            (Vec::new(), Vec::new()),
            Some("the parser crashed on this file".to_string()),
        ),
    };
    ParsedConfig {
        client: config.client.id,
        path: config.path.clone(),
        servers,
        fields,
        parse_error,
    }
}

type Parsed = (Vec<McpServer>, Vec<SecretField>);

fn parse_inner(config: &ConfigRef, bytes: &[u8]) -> Result<Parsed, DocumentError> {
    let file = config.client.file_for(&config.path);
    let (format, layouts) = match file {
        Some(file) => (file.format, file.servers.to_vec()),
        None => (
            ConfigFormat::from_path(&config.path),
            config.client.all_layouts(),
        ),
    };
    let document = parse_document(format, bytes)?;

    let (scope_project, user) = match &config.scope {
        ConfigScope::Project(dir) => (Some(dir.display().to_string()), None),
        ConfigScope::User(user) => (None, Some(user.clone())),
        ConfigScope::System => (None, None),
    };
    let mut servers = Vec::new();
    let mut seen = BTreeSet::new();
    let mut add = |name: String, project: Option<String>, definition: &Map<String, Value>| {
        if !seen.insert((project.clone(), name.clone())) {
            return;
        }
        let parts = server_parts(definition);
        let mut server = McpServer {
            client: config.client.id.to_string(),
            config: config.path.clone(),
            name,
            project,
            user: user.clone(),
            transport: parts.transport,
            command: parts.program,
            argv: parts.argv,
            url: parts.origin,
            fields: parts.fields,
            values: parts.values,
            known: None,
            checks: Vec::new(),
        };
        server.known = super::servers::identify(&server);
        servers.push(server);
    };

    for layout in layouts {
        match layout {
            ServerLayout::At(path) => {
                if let Some(found) = lookup(&document, path) {
                    for (name, definition) in server_entries(found) {
                        add(name, scope_project.clone(), definition);
                    }
                }
            }
            ServerLayout::ClaudeProjects => {
                if let Some(Value::Object(projects)) = document.get("projects") {
                    for (dir, project) in projects {
                        let Some(found) = project.get("mcpServers") else {
                            continue;
                        };
                        for (name, definition) in server_entries(found) {
                            add(name, Some(dir.clone()), definition);
                        }
                    }
                }
            }
        }
    }

    for server in &mut servers {
        server.checks = vec![env_injection(server), secret_manager(server)];
    }
    check_per_project_keys(&mut servers);
    let mut fields = Vec::new();
    for pattern in file.map_or(&[][..], |f| f.secret_fields) {
        let parts: Vec<&str> = pattern.split('.').collect();
        config_fields(&mut fields, &document, &parts, String::new());
    }
    Ok((servers, fields))
}

/// The leaves of `value` at the dotted `pattern` (`*` for any key or index): each a secret
/// field named by its path (strings and numbers only).
fn config_fields(out: &mut Vec<SecretField>, value: &Value, pattern: &[&str], path: String) {
    const MAX_FIELDS: usize = 10_000;
    if out.len() >= MAX_FIELDS {
        return;
    }
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    let Some((first, rest)) = pattern.split_first() else {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return,
        };
        let name = path.rsplit('.').next().map(str::to_string);
        out.push(SecretField {
            field: path,
            class: classify(&text),
            value: text,
            name,
        });
        return;
    };
    match value {
        Value::Object(map) if *first == "*" => {
            for (key, inner) in map {
                config_fields(out, inner, rest, join(key));
            }
        }
        Value::Object(map) => {
            if let Some(inner) = map.get(*first) {
                config_fields(out, inner, rest, join(first));
            }
        }
        Value::Array(items) if *first == "*" => {
            for (i, inner) in items.iter().enumerate() {
                config_fields(out, inner, rest, join(&i.to_string()));
            }
        }
        _ => {}
    }
}

impl McpServer {
    /// Take in the values at `paths` that hold keys the rules found although no secret field
    /// is there (a positional argument, JSON inside an argument, `env.AWS_ACCESS_KEY_ID`
    /// beside its secret): each becomes a literal field of the server, and the server's
    /// checks are made again (the per-project check, across servers, is the caller's).
    pub fn add_found_fields<'p>(&mut self, paths: impl IntoIterator<Item = &'p str>) {
        let mut added = false;
        for path in paths {
            if self.fields.iter().any(|f| f.field == path) {
                continue;
            }
            let Some((_, value)) = self.values.iter().find(|(p, _)| p == path) else {
                continue;
            };
            let name = ["env.", "headers."]
                .iter()
                .find_map(|prefix| path.strip_prefix(prefix))
                .filter(|name| !name.contains(['.', '[']))
                .map(str::to_string);
            self.fields.push(SecretField {
                field: path.to_string(),
                value: value.clone(),
                class: ValueClass::Literal,
                name,
            });
            added = true;
        }
        if added {
            let per_project = self.checks.pop_if(|c| c.check == CHECK_PER_PROJECT_KEY);
            self.checks = vec![env_injection(self), secret_manager(self)];
            self.checks.extend(per_project);
        }
    }
}

/// The servers under a layout's key: a `name → definition` object, or a list of definitions
/// named by their `name` (Continue), else by position.
fn server_entries(found: &Value) -> Vec<(String, &Map<String, Value>)> {
    match found {
        Value::Object(map) => map
            .iter()
            .filter_map(|(name, v)| v.as_object().map(|o| (name.clone(), o)))
            .filter(|(_, o)| looks_like_server(o))
            .collect(),
        Value::Array(list) => list
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_object().map(|o| (i, o)))
            .filter(|(_, o)| looks_like_server(o))
            .map(|(i, o)| {
                let name = ["name", "id", "title"]
                    .iter()
                    .find_map(|k| o.get(*k).and_then(Value::as_str))
                    .map_or_else(|| format!("#{i}"), str::to_string);
                (name, o)
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A dotted key path; a flat key containing the dots matches too (`"mcp.servers": {…}`).
fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    let obj = value.as_object()?;
    if let Some(found) = obj.get(path) {
        return Some(found);
    }
    let mut split_at = path.find('.');
    while let Some(at) = split_at {
        if let Some(inner) = obj.get(&path[..at]) {
            if let Some(found) = lookup(inner, &path[at + 1..]) {
                return Some(found);
            }
        }
        split_at = path[at + 1..].find('.').map(|next| at + 1 + next);
    }
    None
}

/// Deeper nesting than any real config; refusing it keeps hostile files from exhausting the
/// stack of a recursive parser.
const MAX_NESTING: usize = 200;

/// The largest config parsed (the size half of the parse budget). MCP configs are kilobytes,
/// but Claude Code's `~/.claude.json` also keeps every project's state and is known to grow
/// to megabytes; a longer file is not parsed (its bytes are still scanned as text).
pub const MAX_CONFIG_BYTES: usize = 64 << 20;

/// The most elements a JSON or JSONC config may have to be parsed (the count half of the
/// parse budget), counted in one pass over the text before any parser allocates: one per
/// value, key and container (see [`count_elements`]). Parsed, an element costs from 30 to
/// 200 bytes (an array's number, a one-entry object), so a 10 MB file of tiny objects would
/// take a gigabyte; this many keep the worst document to about 100 MiB. A config with its
/// servers counts a few hundred, a `~/.claude.json` a few hundred per project it knows.
pub const MAX_JSON_ELEMENTS: usize = 500_000;

/// [`MAX_JSON_ELEMENTS`] for TOML and YAML, whose parsers spend up to 400 bytes an element
/// (a TOML inline table, a YAML event kept for aliases), and whose configs are smaller.
pub const MAX_ELEMENTS: usize = 250_000;

/// The parse budget of a format: the most elements a config of it may have.
pub fn element_budget(format: ConfigFormat) -> usize {
    match format {
        ConfigFormat::Json | ConfigFormat::Jsonc => MAX_JSON_ELEMENTS,
        ConfigFormat::Toml | ConfigFormat::Yaml | ConfigFormat::Frontmatter => MAX_ELEMENTS,
    }
}

/// Why a config file is not a document of its format. No variant quotes the input: a
/// message may be printed, and a config holds keys.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("nested deeper than {MAX_NESTING} levels: not parsed")]
    TooDeep,
    #[error("config is larger than {MAX_CONFIG_BYTES} bytes ({0} bytes): not parsed")]
    TooLarge(usize),
    #[error("config has more than {0} elements (values, keys and tables): not parsed")]
    TooManyElements(usize),
    #[error("the file is empty")]
    Empty,
    /// The format's parser's own message, with the place it names.
    #[error("{0}")]
    Syntax(String),
}

/// Parse a document into a JSON value whatever its format. A document over the parse budget
/// ([`MAX_CONFIG_BYTES`], [`element_budget`]) is refused before it is parsed: the budget is
/// counted on the text, so a hostile file costs one pass over its bytes, never its tree.
pub fn parse_document(format: ConfigFormat, bytes: &[u8]) -> Result<Value, DocumentError> {
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(DocumentError::TooLarge(bytes.len()));
    }
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let (format, text) = match format {
        ConfigFormat::Frontmatter => (ConfigFormat::Yaml, front_matter(text)),
        format => (format, text),
    };
    check_budget(format, text)?;
    match format {
        ConfigFormat::Json | ConfigFormat::Jsonc => {
            let options = jsonc_parser::ParseOptions {
                allow_comments: true,
                allow_loose_object_property_names: true,
                allow_trailing_commas: true,
            };
            match jsonc_parser::parse_to_serde_value(text, &options) {
                Ok(Some(value)) => Ok(value),
                Ok(None) => Err(DocumentError::Empty),
                Err(error) => Err(DocumentError::Syntax(error.to_string())),
            }
        }
        ConfigFormat::Toml => {
            let value: toml::Value = toml::from_str(text).map_err(|e| {
                let message = e.message().trim().replace('\n', "; ");
                DocumentError::Syntax(match e.span() {
                    Some(span) => {
                        let (line, column) = line_column(text, span.start);
                        format!("{message} on line {line} column {column}")
                    }
                    None => message,
                })
            })?;
            serde_json::to_value(value).map_err(|e| DocumentError::Syntax(e.to_string()))
        }
        ConfigFormat::Yaml | ConfigFormat::Frontmatter => {
            if text.trim().is_empty() {
                return Err(DocumentError::Empty);
            }
            let mut value = yaml_built(text)?;
            // `<<: *defaults` is how YAML configs share an env block between servers.
            value.apply_merge().map_err(yaml_syntax)?;
            Ok(yaml_to_json(value))
        }
    }
}

/// The YAML front matter of a Markdown file: the lines between a first line `---` and the
/// next line `---` (or `...`); nothing when the file does not open with one.
fn front_matter(text: &str) -> &str {
    let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    else {
        return "";
    };
    let mut at = 0;
    for line in rest.split_inclusive('\n') {
        if matches!(line.trim_end(), "---" | "...") {
            return &rest[..at];
        }
        at += line.len();
    }
    ""
}

/// A YAML text (checked against the budget by [`check_budget`]) as a value, within the
/// budget as it is built. An alias copies the node it names, and aliases of aliases copy
/// copies: a short text can stand for a tree no count of its bytes foresees, so the tree is
/// built by a visitor that counts every value it makes, and stops.
fn yaml_built(text: &str) -> Result<serde_norway::Value, DocumentError> {
    let budget = element_budget(ConfigFormat::Yaml);
    let counted = Counted {
        left: &Cell::new(budget + 1),
    };
    counted
        .deserialize(serde_norway::Deserializer::from_str(text))
        .map_err(|e| {
            if counted.left.get() == 0 {
                DocumentError::TooManyElements(budget)
            } else {
                yaml_syntax(e)
            }
        })
}

/// A YAML text as a value, within the parse budget (counted on the text first, then as the
/// tree is built), merge keys left as they are. For every YAML file read (credential files
/// too).
pub fn yaml_value(text: &str) -> Result<serde_norway::Value, DocumentError> {
    check_budget(ConfigFormat::Yaml, text)?;
    yaml_built(text)
}

/// Every document of a YAML stream (`---`-separated: Kubernetes manifests, Helm and kustomize
/// output), within one parse budget for the whole text; empty documents are left out.
pub fn yaml_documents(text: &str) -> Result<Vec<serde_norway::Value>, DocumentError> {
    check_budget(ConfigFormat::Yaml, text)?;
    let budget = element_budget(ConfigFormat::Yaml);
    let left = Cell::new(budget + 1);
    let mut documents = Vec::new();
    for document in serde_norway::Deserializer::from_str(text) {
        let counted = Counted { left: &left };
        match counted.deserialize(document) {
            Ok(serde_norway::Value::Null) => {}
            Ok(value) => documents.push(value),
            Err(_) if left.get() == 0 => return Err(DocumentError::TooManyElements(budget)),
            Err(e) => return Err(yaml_syntax(e)),
        }
    }
    Ok(documents)
}

fn yaml_syntax(e: serde_norway::Error) -> DocumentError {
    DocumentError::Syntax(e.to_string().replace('\n', "; "))
}

/// A YAML value built element by element, each one taken from `left`: when none is left the
/// parse fails (and `left` says why). Tags are dropped, as [`yaml_to_json`] would drop them.
#[derive(Clone, Copy)]
struct Counted<'c> {
    left: &'c Cell<usize>,
}

impl Counted<'_> {
    fn take<E: de::Error>(self) -> Result<(), E> {
        match self.left.get().checked_sub(1) {
            Some(left) if left > 0 => {
                self.left.set(left);
                Ok(())
            }
            _ => {
                self.left.set(0);
                Err(E::custom("over the parse budget"))
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Counted<'_> {
    type Value = serde_norway::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Counted<'_> {
    type Value = serde_norway::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        self.take()?;
        Ok(v.into())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.take()?;
        Ok(v.into())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.take()?;
        Ok(v.into())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.take()?;
        Ok(v.into())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.take()?;
        Ok(v.into())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        self.take()?;
        Ok(v.into())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.take()?;
        Ok(serde_norway::Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        self.take()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(serde_norway::Value::Sequence(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        self.take()?;
        let mut mapping = serde_norway::Mapping::new();
        while let Some(key) = map.next_key_seed(self)? {
            if mapping.contains_key(&key) {
                // As serde_norway's own mapping says, without quoting the key.
                return Err(de::Error::custom("duplicate entry in a mapping"));
            }
            let value = map.next_value_seed(self)?;
            mapping.insert(key, value);
        }
        Ok(serde_norway::Value::Mapping(mapping))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        // A tagged node (`!secret value`): its value.
        let (_tag, contents): (de::IgnoredAny, _) = data.variant()?;
        contents.newtype_variant_seed(self)
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// YAML allows keys JSON does not (numbers, booleans, nested values): they become strings.
fn yaml_to_json(value: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    Y::Bool(b) => b.to_string(),
                    Y::Number(n) => n.to_string(),
                    Y::Null => "null".to_string(),
                    other => serde_norway::to_string(&other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                out.insert(key, yaml_to_json(v));
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => yaml_to_json(tagged.value),
    }
}

/// Refuse a document whose parse would take too much: over [`MAX_CONFIG_BYTES`], over its
/// format's [`element_budget`], or (JSON) nested deeper than [`MAX_NESTING`]. Cheap: one pass
/// over the text, nothing allocated. For every parser of a config-like file (credential files
/// too).
pub fn check_budget(format: ConfigFormat, text: &str) -> Result<(), DocumentError> {
    if text.len() > MAX_CONFIG_BYTES {
        return Err(DocumentError::TooLarge(text.len()));
    }
    let (depth, elements) = match format {
        ConfigFormat::Json | ConfigFormat::Jsonc => json_shape(text),
        ConfigFormat::Toml | ConfigFormat::Yaml | ConfigFormat::Frontmatter => {
            (0, count_elements(format, text))
        }
    };
    if depth > MAX_NESTING {
        return Err(DocumentError::TooDeep);
    }
    let budget = element_budget(format);
    if elements > budget {
        return Err(DocumentError::TooManyElements(budget));
    }
    Ok(())
}

/// About one per element of a TOML or YAML document: the bytes that open a value, a key or a
/// table. Quoted strings and comments are not skipped (only JSON's are, where a long
/// `~/.claude.json` history is all strings): a real config's few extra are no matter, and
/// an over-count can only refuse, never let a big document through.
/// - TOML: `=` (a key), `.` (a dotted key's table), `[` and `]` (a header, an array), `{`
///   (an inline table), `,` (an array's or inline table's next element).
/// - YAML: `- ` (a sequence entry), `:` (a mapping entry, `"a":1` in a flow mapping too),
///   `? ` (a complex key), `[`, `{`, `,` (flow collections), `*` (an alias). What an alias
///   copies is counted as the tree is built (see [`Counted`]).
fn count_elements(format: ConfigFormat, text: &str) -> usize {
    let bytes = text.as_bytes();
    match format {
        ConfigFormat::Toml => bytes
            .iter()
            .filter(|b| matches!(b, b'=' | b'.' | b'[' | b']' | b'{' | b','))
            .count(),
        ConfigFormat::Yaml | ConfigFormat::Frontmatter => {
            let ends_token = |at: usize| {
                bytes
                    .get(at + 1)
                    .is_none_or(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            };
            bytes
                .iter()
                .enumerate()
                .filter(|&(at, b)| match b {
                    b'[' | b'{' | b',' | b'*' | b':' => true,
                    b'-' | b'?' => ends_token(at),
                    _ => false,
                })
                .count()
        }
        ConfigFormat::Json | ConfigFormat::Jsonc => json_shape(text).1,
    }
}

/// The deepest bracket nesting of a JSON(C) text, and its elements: the `{`, `[`, `,` and `:`
/// that open a container, a value or a member (about one per value and one per key).
/// Strings and comments are skipped.
fn json_shape(text: &str) -> (usize, usize) {
    let bytes = text.as_bytes();
    let (mut depth, mut max, mut elements, mut i) = (0usize, 0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' => {
                let quote = bytes[i];
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
                elements += 1;
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' | b':' => elements += 1,
            _ => {}
        }
        i += 1;
    }
    (max, elements)
}

/// Values that configure a secret (placeholders and empty values configure nothing).
fn configured(server: &McpServer) -> impl Iterator<Item = &SecretField> {
    server
        .fields
        .iter()
        .filter(|f| !matches!(f.class, ValueClass::Placeholder | ValueClass::Empty))
}

fn field_list<'a>(fields: impl Iterator<Item = &'a SecretField>) -> String {
    fields
        .map(|f| f.field.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Secrets reach the server as references, never as literals in the file.
fn env_injection(server: &McpServer) -> ServerCheck {
    let literals = field_list(server.literal_fields());
    let (pass, reason) = if !literals.is_empty() {
        (false, format!("literal secret in {literals}"))
    } else if configured(server).next().is_none() {
        (true, "no secret is configured in the file".to_string())
    } else {
        (
            true,
            "every secret is a reference resolved at run time".to_string(),
        )
    };
    ServerCheck {
        check: CHECK_ENV_INJECTION,
        pass,
        reason,
    }
}

/// Secrets come from a secret manager or are prompted for, not from plain variables.
fn secret_manager(server: &McpServer) -> ServerCheck {
    let not_managed: Vec<&SecretField> = configured(server)
        .filter(|f| !matches!(f.class, ValueClass::SecretManager | ValueClass::InputPrompt))
        .collect();
    let (pass, reason) = if configured(server).next().is_none() {
        (true, "no secret is configured in the file".to_string())
    } else if not_managed.is_empty() {
        (
            true,
            "every secret comes from a secret manager or a prompt".to_string(),
        )
    } else {
        let mut parts = Vec::new();
        let literal = field_list(
            not_managed
                .iter()
                .copied()
                .filter(|f| f.class == ValueClass::Literal),
        );
        let env = field_list(
            not_managed
                .iter()
                .copied()
                .filter(|f| f.class == ValueClass::EnvRef),
        );
        if !literal.is_empty() {
            parts.push(format!("literal in the file: {literal}"));
        }
        if !env.is_empty() {
            parts.push(format!("plain environment variable: {env}"));
        }
        (false, parts.join("; "))
    };
    ServerCheck {
        check: CHECK_SECRET_MANAGER,
        pass,
        reason,
    }
}

/// The `per-project-key` check over any set of servers: a literal used by servers of more than
/// one scope (project, or user for user-wide servers) fails for each of them. `parse` runs it
/// per file; the audit stage runs it again over every file of a host (or of many hosts) to
/// catch reuse across configs. An existing result is replaced.
pub fn check_per_project_keys(servers: &mut [McpServer]) {
    // literal value → scopes → servers (by index) using it
    let mut uses: BTreeMap<&str, BTreeMap<String, Vec<usize>>> = BTreeMap::new();
    for (i, server) in servers.iter().enumerate() {
        let scope = server.scope_key();
        for field in server.literal_fields() {
            uses.entry(field.value.as_str())
                .or_default()
                .entry(scope.clone())
                .or_default()
                .push(i);
        }
    }
    let mut results: Vec<ServerCheck> = Vec::with_capacity(servers.len());
    for server in servers.iter() {
        let scope = server.scope_key();
        let mut shared_with: Vec<String> = Vec::new();
        let mut has_literal = false;
        for field in server.literal_fields() {
            has_literal = true;
            let Some(scopes) = uses.get(field.value.as_str()) else {
                continue;
            };
            for (other_scope, users) in scopes {
                if *other_scope == scope {
                    continue;
                }
                for &j in users {
                    let other = &servers[j];
                    let label = format!(
                        "{} shared with server '{}' of {} ({})",
                        field.field,
                        other.name,
                        other_scope,
                        other.config.display()
                    );
                    if !shared_with.contains(&label) {
                        shared_with.push(label);
                    }
                }
            }
        }
        let (pass, reason) = if !shared_with.is_empty() {
            (
                false,
                format!("same key in another scope: {}", shared_with.join("; ")),
            )
        } else if has_literal {
            (true, format!("its literal keys are used only in {scope}"))
        } else {
            (true, "no literal key".to_string())
        };
        results.push(ServerCheck {
            check: CHECK_PER_PROJECT_KEY,
            pass,
            reason,
        });
    }
    for (server, result) in servers.iter_mut().zip(results) {
        server.checks.retain(|c| c.check != CHECK_PER_PROJECT_KEY);
        server.checks.push(result);
    }
}
