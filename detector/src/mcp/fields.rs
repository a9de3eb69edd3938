//! Which values of a server definition carry a secret, and what kind of value each one is.
//!
//! A value is secret-bearing when its name looks secret (`OPENAI_API_KEY`, `Authorization`,
//! `--api-key`, `?token=`), or when it is recognisably a reference to a secret kept elsewhere
//! (`${GITHUB_TOKEN}`, `op://…`, `$(vault kv get …)`, `${input:…}`). Each one is named by a
//! dotted path that stays the same across versions of the file, so the audit can tell a
//! rotated key (same slot, new value) from a removed one.
use serde_json::{Map, Value};

pub(crate) use crate::detect::names::is_secret_name;
use crate::detect::placeholder::in_example_url;
use crate::detect::value::{classify, ValueClass};

use super::parse::SecretField;
use super::shell;

/// What a server definition says, normalised across clients.
#[derive(Debug, Default)]
pub(crate) struct ServerParts {
    pub transport: String,
    pub program: Option<String>,
    pub argv: Vec<String>,
    pub origin: Option<String>,
    pub fields: Vec<SecretField>,
    /// Every string in the definition, by its path, whatever its name: where a key that no
    /// secret-named field holds still sits (a positional argument, JSON inside an argument,
    /// `env.AWS_ACCESS_KEY_ID`), to attribute it to the server.
    pub values: Vec<(String, String)>,
}

/// Keys that are read explicitly; the generic walk over the rest skips them.
const KNOWN_KEYS: &[&str] = &[
    "command",
    "cmd",
    "args",
    "env",
    "environment",
    "envs",
    "env_keys",
    "env_vars",
    "headers",
    "http_headers",
    "requestInit",
    "env_http_headers",
    "bearer_token_env_var",
    "headersHelper",
    "envFile",
    "env_file",
    "url",
    "uri",
    "serverUrl",
    "httpUrl",
    "type",
    "transport",
    "name",
    "description",
    "cwd",
    "enabled",
    "disabled",
];

/// How deep the generic walk goes into unknown objects (`oauth.clientSecret`, `settings.*`).
const WALK_DEPTH: usize = 4;

/// How deep [`all_values`] goes, and how many strings it keeps of one definition.
const VALUES_DEPTH: usize = 8;
const MAX_VALUES: usize = 10_000;

/// Read one server definition.
pub(crate) fn server_parts(definition: &Map<String, Value>) -> ServerParts {
    let server = normalise(definition);
    let mut out = Fields::default();

    // The command line: a string, a string with arguments in it, an argv array (opencode),
    // or `{path, args, env}` (older Zed).
    let mut argv: Vec<String> = Vec::new();
    let mut command_words_from_string = false;
    let mut command_is_argv = false;
    match server.get("command").or_else(|| server.get("cmd")) {
        Some(Value::String(s)) => {
            let words = shell::split(s);
            if words.len() > 1 {
                command_words_from_string = true;
            }
            argv.extend(words.into_iter().map(|w| w.text));
            if argv.is_empty() {
                argv.push(s.clone());
            }
        }
        Some(Value::Array(items)) => {
            command_is_argv = true;
            argv.extend(items.iter().map(scalar_text));
        }
        Some(Value::Object(obj)) => {
            command_is_argv = true;
            argv.push(obj.get("path").map(scalar_text).unwrap_or_default());
            push_strings(&mut argv, obj.get("args"));
            env_fields(&mut out, "command.env", obj.get("env"));
        }
        _ => {}
    }
    // Leading `KEY=value` words are the environment, not the program (and may be secrets).
    let program = argv
        .iter()
        .find(|w| shell::assignment(w).is_none())
        .cloned();
    let args_start = argv.len();
    push_strings(&mut argv, server.get("args"));

    // `bash -c SCRIPT`: the script is a command line of its own, read first so that its
    // assignments name their slots (`command:KEY`) before anything else claims them.
    let argv_refs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let script_at = shell::script_index(&argv_refs);
    if let Some(at) = script_at {
        script_fields(&mut out, argv_refs[at]);
    }
    // A whole command line written into `command` ("KEY=… npx …", "sh -c '…'").
    if command_words_from_string {
        let words: Vec<&str> = argv_refs[..args_start]
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != script_at)
            .map(|(_, w)| *w)
            .collect();
        command_line_fields(&mut out, &words);
    }
    // An argv array in `command` (opencode, older Zed): `command[i]` is its i-th element.
    if command_is_argv {
        let mut skip = vec![0];
        skip.extend(script_at);
        args_fields(&mut out, "command", &argv_refs[..args_start], &skip);
    }
    let skip: Vec<usize> = script_at
        .and_then(|at| at.checked_sub(args_start))
        .into_iter()
        .collect();
    args_fields(&mut out, "args", &argv_refs[args_start..], &skip);

    for key in ["env", "environment", "envs"] {
        env_fields(&mut out, key, server.get(key));
    }
    for key in ["headers", "http_headers"] {
        header_fields(&mut out, key, server.get(key));
    }
    if let Some(Value::Object(obj)) = server.get("requestInit") {
        header_fields(&mut out, "requestInit.headers", obj.get("headers"));
    }
    // Codex: headers and a bearer token taken from named environment variables.
    if let Some(Value::Object(map)) = server.get("env_http_headers") {
        for (header, var) in map {
            let var = scalar_text(var);
            out.push_class(
                format!("env_http_headers.{header}"),
                var.clone(),
                ValueClass::EnvRef,
                Some(header.clone()),
            );
        }
    }
    // Claude Code: a command whose output is the headers, run when the server is used.
    if let Some(Value::String(command)) = server.get("headersHelper") {
        out.push_class(
            "headersHelper".to_string(),
            command.clone(),
            ValueClass::SecretManager,
            None,
        );
    }
    // VS Code (`envFile`) and others (`env_file`): the environment is loaded from a file when
    // the server starts, so the keys it holds are not in this config. The file is a place of
    // its own (a `.env` a walk reads).
    for key in ["envFile", "env_file"] {
        if let Some(Value::String(path)) = server.get(key) {
            out.push_class(key.to_string(), path.clone(), ValueClass::EnvRef, None);
        }
    }
    if let Some(Value::String(var)) = server.get("bearer_token_env_var") {
        out.push_class(
            "bearer_token_env_var".to_string(),
            var.clone(),
            ValueClass::EnvRef,
            Some(var.clone()),
        );
    }
    // Goose: the values of `env_keys` live in its secret store (the system keyring).
    if let Some(Value::Array(keys)) = server.get("env_keys") {
        for (i, key) in keys.iter().enumerate() {
            let key = scalar_text(key);
            out.push_class(
                format!("env_keys[{i}]"),
                key.clone(),
                ValueClass::SecretManager,
                Some(key),
            );
        }
    }

    let mut origin = None;
    for key in ["url", "uri", "serverUrl", "httpUrl"] {
        if let Some(Value::String(url)) = server.get(key) {
            url_fields(&mut out, key, url);
            origin = origin.or_else(|| url_origin(url));
        }
    }

    for (key, value) in &server {
        if !KNOWN_KEYS.contains(&key.as_str()) {
            walk(&mut out, key, key, value, WALK_DEPTH);
        }
    }

    let mut values = Vec::new();
    for (key, value) in &server {
        all_values(&mut values, key.clone(), value, VALUES_DEPTH);
    }

    let transport = transport(&server, origin.is_some(), server.contains_key("httpUrl"));
    ServerParts {
        values,
        transport,
        program: program
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty()),
        argv: argv
            .into_iter()
            .skip_while(|w| shell::assignment(w).is_some())
            .collect(),
        origin,
        fields: out.fields,
    }
}

/// Whether an entry of a servers map is a server at all (opencode v2 nests `servers` inside
/// `mcp`; Goose lists built-in extensions next to real ones).
pub(crate) fn looks_like_server(definition: &Map<String, Value>) -> bool {
    let server = normalise(definition);
    let is_builtin = matches!(
        server.get("type").and_then(Value::as_str),
        Some("builtin" | "platform" | "frontend" | "inline_python")
    );
    if is_builtin {
        return false;
    }
    [
        "command",
        "cmd",
        "args",
        "url",
        "uri",
        "serverUrl",
        "httpUrl",
        "env",
        "environment",
        "envs",
        "headers",
        "type",
        "settings",
    ]
    .iter()
    .any(|k| server.contains_key(*k))
}

/// Continue's legacy `{transport: {…}}` and a nested `config` object are the server itself.
fn normalise(definition: &Map<String, Value>) -> Map<String, Value> {
    let mut server = definition.clone();
    for inner in ["transport", "config"] {
        if let Some(Value::Object(obj)) = definition.get(inner) {
            let carries_server = obj.contains_key("command")
                || obj.contains_key("cmd")
                || obj.contains_key("url")
                || obj.contains_key("uri");
            if carries_server {
                server.remove(inner);
                for (k, v) in obj {
                    server.insert(k.clone(), v.clone());
                }
            }
        }
    }
    server
}

fn transport(server: &Map<String, Value>, has_url: bool, has_http_url: bool) -> String {
    let declared = server
        .get("type")
        .or_else(|| server.get("transport"))
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase);
    match declared.as_deref() {
        Some("stdio" | "local") => return "stdio".into(),
        Some("sse") => return "sse".into(),
        Some(
            "http" | "streamable-http" | "streamable_http" | "streamablehttp" | "remote" | "https",
        ) => {
            return "http".into();
        }
        _ => {}
    }
    if has_http_url {
        return "http".into();
    }
    if has_url {
        let path_is_sse = ["url", "uri", "serverUrl"].iter().any(|k| {
            server
                .get(*k)
                .and_then(Value::as_str)
                .map(|u| {
                    u.split(['?', '#'])
                        .next()
                        .unwrap_or(u)
                        .trim_end_matches('/')
                })
                .is_some_and(|u| u.ends_with("/sse"))
        });
        return if path_is_sse { "sse" } else { "http" }.into();
    }
    "stdio".into()
}

#[derive(Default)]
struct Fields {
    fields: Vec<SecretField>,
}

impl Fields {
    fn push(&mut self, field: String, value: String, name: Option<String>) {
        let class = classify(&value);
        self.push_class(field, value, class, name);
    }

    fn push_class(
        &mut self,
        field: String,
        value: String,
        class: ValueClass,
        name: Option<String>,
    ) {
        if self.fields.iter().any(|f| f.field == field) {
            return;
        }
        self.fields.push(SecretField {
            field,
            value,
            class,
            name,
        });
    }
}

/// A reference or a secret-manager call: secret-bearing whatever its name, unless it merely
/// points at a well-known non-secret variable (`${HOME}`, `${workspaceFolder}`).
fn is_reference(value: &str) -> bool {
    match classify(value) {
        ValueClass::SecretManager | ValueClass::InputPrompt => true,
        ValueClass::EnvRef => !references_ordinary_variable(value),
        _ => false,
    }
}

fn references_ordinary_variable(value: &str) -> bool {
    const ORDINARY: &[&str] = &[
        "HOME",
        "PATH",
        "PWD",
        "USER",
        "SHELL",
        "TMPDIR",
        "TMP",
        "LANG",
        "TERM",
        "NODE_ENV",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "XDG_CACHE_HOME",
        "XDG_RUNTIME_DIR",
        "workspaceFolder",
        "workspaceFolderBasename",
        "workspaceRoot",
        "userHome",
        "cwd",
        "file",
        "fileDirname",
        "pathSeparator",
        "CLAUDE_PROJECT_DIR",
        "CLAUDE_PLUGIN_ROOT",
    ];
    let name: String = value
        .trim()
        .trim_start_matches(['$', '%', '{'])
        .trim_start_matches("env:")
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    ORDINARY.contains(&name.as_str())
}

/// A value that points at a file (the file itself is scanned where it lies).
fn is_file_path(value: &str) -> bool {
    let v = value.trim();
    let b = v.as_bytes();
    let drive =
        b.len() > 2 && b[0].is_ascii_alphabetic() && b[1] == b':' && matches!(b[2], b'\\' | b'/');
    let path_like = v.starts_with('/')
        || v.starts_with("~/")
        || v.starts_with("./")
        || v.starts_with("../")
        || drive
        || starts_with_path_variable(v);
    path_like && !v.contains(char::is_whitespace)
}

/// `${HOME}/…`, `$HOME/…`, `${workspaceFolder}/…`, `%USERPROFILE%\…`: a directory variable
/// and a path under it (whatever the variable, a value that continues as a path is a path).
fn starts_with_path_variable(v: &str) -> bool {
    let rest = if let Some(inner) = v.strip_prefix("${") {
        inner.split_once('}').map(|(_, rest)| rest)
    } else if let Some(inner) = v.strip_prefix('%') {
        inner.split_once('%').map(|(_, rest)| rest)
    } else if let Some(inner) = v.strip_prefix('$') {
        inner
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map(|at| &inner[at..])
    } else {
        None
    };
    rest.is_some_and(|rest| rest.len() > 1 && rest.starts_with(['/', '\\']))
}

fn env_fields(out: &mut Fields, prefix: &str, env: Option<&Value>) {
    let Some(Value::Object(env)) = env else {
        return;
    };
    for (name, value) in env {
        if value.is_object() || value.is_array() {
            continue;
        }
        named_value(out, format!("{prefix}.{name}"), name, &scalar_text(value));
    }
}

/// The one decision for a named value (variable, flag, parameter, key): a reference is
/// secret-bearing whatever its name; a URL carries its secrets inside (user info, query); a
/// file path points at the secret rather than holding it; else the name decides.
fn named_value(out: &mut Fields, field: String, name: &str, value: &str) {
    if is_reference(value) {
        out.push(field, value.to_string(), Some(name.to_string()));
    } else if has_scheme(value) {
        url_fields(out, &field, value);
    } else if is_secret_name(name) && !is_file_path(value) {
        out.push(field, value.to_string(), Some(name.to_string()));
    }
}

fn header_fields(out: &mut Fields, prefix: &str, headers: Option<&Value>) {
    match headers {
        Some(Value::Object(headers)) => {
            for (name, value) in headers {
                header_field(out, format!("{prefix}.{name}"), name, &scalar_text(value));
            }
        }
        // `["Authorization: Bearer …"]`
        Some(Value::Array(lines)) => {
            for (i, line) in lines.iter().enumerate() {
                if let Some((name, value)) = scalar_text(line).split_once(':') {
                    header_field(out, format!("{prefix}[{i}]"), name.trim(), value.trim());
                }
            }
        }
        _ => {}
    }
}

fn header_field(out: &mut Fields, field: String, name: &str, value: &str) {
    if is_secret_name(name) || is_reference(value) || has_auth_scheme(value) {
        out.push(field, value.to_string(), Some(name.to_string()));
    }
}

fn has_auth_scheme(value: &str) -> bool {
    without_auth_scheme(value).is_some()
}

/// A header value without its authorization scheme (`Bearer …`, `Basic …`, `Token …`,
/// `Bot …`): the credential itself; None when it names no scheme.
pub(crate) fn without_auth_scheme(value: &str) -> Option<&str> {
    let start = value.trim_start();
    ["bearer ", "basic ", "token ", "bot "]
        .iter()
        .find_map(|scheme| {
            let head = start.get(..scheme.len())?;
            head.eq_ignore_ascii_case(scheme)
                .then(|| start[scheme.len()..].trim())
        })
}

/// Flags that take a `Name: value` header.
fn is_header_flag(flag: &str) -> bool {
    matches!(
        flag,
        "header" | "headers" | "H" | "http-header" | "add-header"
    )
}

/// Arguments of a command: `--api-key VALUE`, `--token=VALUE`, `--header "Authorization: …"`,
/// `KEY=value`, URLs with credentials, JSON objects, and bare references.
fn args_fields(out: &mut Fields, prefix: &str, args: &[&str], skip: &[usize]) {
    let mut i = 0;
    while i < args.len() {
        let arg = args[i];
        if skip.contains(&i) {
            i += 1;
            continue;
        }
        let field_at = |j: usize| format!("{prefix}[{j}]");
        if let Some(flag) = arg.strip_prefix('-').filter(|f| !f.is_empty() && *f != "-") {
            let flag = flag.trim_start_matches('-');
            if let Some((name, value)) = flag.split_once('=') {
                if is_header_flag(name) {
                    header_arg(out, field_at(i), value);
                } else if is_secret_name(name) {
                    named_value(out, field_at(i), name, value);
                } else {
                    value_arg(out, &field_at(i), value);
                }
            } else if i + 1 < args.len() && !args[i + 1].starts_with("--") {
                let next = args[i + 1];
                if is_header_flag(flag) {
                    header_arg(out, field_at(i + 1), next);
                    i += 1;
                } else if is_secret_name(flag) {
                    named_value(out, field_at(i + 1), flag, next);
                    i += 1;
                }
            }
        } else {
            value_arg(out, &field_at(i), arg);
        }
        i += 1;
    }
}

/// A positional argument (or a flag's value whose flag says nothing).
fn value_arg(out: &mut Fields, field: &str, arg: &str) {
    if let Some((name, value)) = shell::assignment(arg) {
        named_value(out, field.to_string(), name, value);
    } else if has_scheme(arg) {
        url_fields(out, field, arg);
    } else if arg.trim_start().starts_with('{') {
        if let Some(Value::Object(obj)) = inner_json(arg) {
            for (key, value) in &obj {
                walk(out, &format!("{field}.{key}"), key, value, WALK_DEPTH);
            }
        }
    } else if let Some((name, value)) = header_line(arg) {
        if is_secret_name(name) {
            out.push(field.to_string(), value.to_string(), Some(name.to_string()));
        }
    } else if matches!(
        classify(arg),
        ValueClass::SecretManager | ValueClass::InputPrompt
    ) {
        out.push(field.to_string(), arg.to_string(), None);
    }
}

fn header_arg(out: &mut Fields, field: String, line: &str) {
    if let Some((name, value)) = header_line(line) {
        header_field(out, field, name, value);
    }
}

/// `Name: value` (also `Name:value`, as mcp-remote documents it).
fn header_line(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once(':')?;
    let name = name.trim();
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (valid && !value.starts_with("//")).then(|| (name, value.trim()))
}

/// A command line written as one string (`command: "KEY=… npx …"`) or a shell script.
fn command_line_fields(out: &mut Fields, words: &[&str]) {
    let shell_words: Vec<shell::Word> = words
        .iter()
        .enumerate()
        .map(|(i, w)| shell::Word {
            text: (*w).to_string(),
            command_start: i == 0,
        })
        .collect();
    command_words(out, &shell_words);
}

fn script_fields(out: &mut Fields, script: &str) {
    let words = shell::split(script);
    command_words(out, &words);
}

/// Assignments and secret-named flags of a command line, all named `command:NAME`.
fn command_words(out: &mut Fields, words: &[shell::Word]) {
    for (name, value) in shell::assignments(words) {
        named_value(out, format!("command:{name}"), &name, &value);
    }
    let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
    let mut scratch = Fields::default();
    args_fields(&mut scratch, "command", &texts, &[]);
    for f in scratch.fields {
        // Word positions shift between versions of a script; names do not.
        let rest = f
            .field
            .strip_prefix("command[")
            .and_then(|r| r.split_once(']'))
            .map_or("", |(_, rest)| rest);
        let slot = match &f.name {
            Some(name) if rest.is_empty() => format!("command:{name}"),
            _ => format!("command{rest}"),
        };
        out.push_class(slot, f.value, f.class, f.name);
    }
}

fn has_scheme(value: &str) -> bool {
    let v = value.trim();
    match v.split_once("://") {
        Some((scheme, rest)) => {
            !scheme.is_empty()
                && !rest.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
        }
        None => false,
    }
}

/// Credentials in a URL: secret-named query parameters and a password in the user info.
fn url_fields(out: &mut Fields, prefix: &str, url: &str) {
    let url = url.trim();
    let without_fragment = url.split('#').next().unwrap_or(url);
    let (base, query) = match without_fragment.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (without_fragment, None),
    };
    if let Some((_, rest)) = base.split_once("://") {
        let authority = rest.split('/').next().unwrap_or(rest);
        if let Some((userinfo, _host)) = authority.rsplit_once('@') {
            match userinfo.split_once(':') {
                // A documentation host's password (`user:s3cret@db.example.com`) is filler,
                // as the rules judge it, whatever it looks like.
                Some((_user, password))
                    if !password.is_empty()
                        && in_example_url(authority.as_bytes(), userinfo.len()) =>
                {
                    out.push_class(
                        format!("{prefix}@password"),
                        percent_decode(password),
                        ValueClass::Placeholder,
                        None,
                    );
                }
                Some((_user, password)) if !password.is_empty() => {
                    out.push(format!("{prefix}@password"), percent_decode(password), None);
                }
                // A token used as the user name (`https://TOKEN@github.com`).
                None if userinfo.len() >= 20 => {
                    out.push(format!("{prefix}@user"), percent_decode(userinfo), None);
                }
                _ => {}
            }
        }
    }
    for pair in query.unwrap_or("").split('&') {
        let Some((name, value)) = pair.split_once('=') else {
            continue;
        };
        let name = percent_decode(name);
        let value = percent_decode(value);
        if is_secret_name(&name) || is_reference(&value) {
            out.push(format!("{prefix}?{name}"), value, Some(name));
        }
    }
}

/// `scheme://host[:port]`, without user info, path or query: safe to print.
fn url_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    (!host.is_empty()).then(|| format!("{scheme}://{host}"))
}

/// `%XX` decoded; `+` stays: it is as likely a base64 character of a key as an encoded space.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Secret-named string leaves of keys nobody reads explicitly (`oauth.clientSecret`,
/// Zed's `settings.github_personal_access_token`, `bearer_token`).
fn walk(out: &mut Fields, path: &str, key: &str, value: &Value, depth: usize) {
    match value {
        Value::Object(obj) if depth > 0 => {
            for (k, v) in obj {
                walk(out, &format!("{path}.{k}"), k, v, depth - 1);
            }
        }
        Value::String(s) => named_value(out, path.to_string(), key, s),
        Value::Number(n) if is_secret_name(key) => {
            out.push(path.to_string(), n.to_string(), Some(key.to_string()));
        }
        _ => {}
    }
}

/// Every string (and number) leaf under `value`, with its path: `env.NAME`, `args[3]`,
/// `headers.X-Key`, `oauth.client.secret`. At most [`MAX_VALUES`] of them.
fn all_values(out: &mut Vec<(String, String)>, path: String, value: &Value, depth: usize) {
    if out.len() >= MAX_VALUES {
        return;
    }
    match value {
        // JSON inside a string (`--config '{"auth": {…}}'`) is walked as JSON.
        Value::String(s) if depth > 0 && s.len() <= MAX_INNER_JSON => match inner_json(s) {
            Some(inner) => all_values(out, path, &inner, depth - 1),
            None => out.push((path, s.clone())),
        },
        Value::String(s) => out.push((path, s.clone())),
        Value::Number(n) => out.push((path, n.to_string())),
        Value::Object(obj) if depth > 0 => {
            for (k, v) in obj {
                all_values(out, format!("{path}.{k}"), v, depth - 1);
            }
        }
        Value::Array(items) if depth > 0 => {
            for (i, v) in items.iter().enumerate() {
                all_values(out, format!("{path}[{i}]"), v, depth - 1);
            }
        }
        _ => {}
    }
}

/// The largest string [`all_values`] reads as JSON.
const MAX_INNER_JSON: usize = 64 * 1024;

/// A string that is a JSON object or array, parsed.
fn inner_json(s: &str) -> Option<Value> {
    let trimmed = s.trim_start();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return None;
    }
    serde_json::from_str::<Value>(s)
        .ok()
        .filter(|v| v.is_object() || v.is_array())
}

fn push_strings(argv: &mut Vec<String>, value: Option<&Value>) {
    match value {
        Some(Value::Array(items)) => argv.extend(items.iter().map(scalar_text)),
        // A single string of arguments (seen in hand-written configs).
        Some(Value::String(s)) => argv.extend(shell::split(s).into_iter().map(|w| w.text)),
        _ => {}
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_credentials() {
        let mut out = Fields::default();
        url_fields(
            &mut out,
            "url",
            "https://bob:p%40ss@db.example.com/x?apiKey=${K}&limit=3&token=abc#frag",
        );
        let got: Vec<(&str, &str)> = out
            .fields
            .iter()
            .map(|f| (f.field.as_str(), f.value.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("url@password", "p@ss"),
                ("url?apiKey", "${K}"),
                ("url?token", "abc")
            ]
        );
        assert_eq!(out.fields[0].class, ValueClass::Placeholder, "example.com");
        let mut out = Fields::default();
        url_fields(
            &mut out,
            "args[2]",
            "postgresql://app:Qw7rT2pLx9@db.internal:5432/app",
        );
        assert_eq!(out.fields[0].field, "args[2]@password");
        assert_eq!(out.fields[0].class, ValueClass::Literal);
        assert_eq!(
            url_origin("https://u:p@mcp.example.com:8443/k/sse?x=1").as_deref(),
            Some("https://mcp.example.com:8443")
        );
    }

    #[test]
    fn command_substitution_is_not_a_literal() {
        assert_eq!(classify("$(cat ~/.token)"), ValueClass::EnvRef);
        assert_eq!(classify("$(op read op://v/i/f)"), ValueClass::SecretManager);
    }
}
