//! What `fix` would do to one config: each literal key found where the file holds it, the way
//! this client can refer to it instead (its own reference syntax, its environment forwarding,
//! or a wrapper that starts the server with the key loaded from the store), and the edit.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde_json::Value;
use zeroize::Zeroizing;

use super::{
    document::{self, display, DocPath, EditError, Op, Seg},
    names::Names,
    wrapper::{self, Wrapper},
};
use crate::mcp::{
    catalogue::{Launch, Reference},
    parse::parse_document,
    Client, ConfigFormat, ParsedConfig,
};

/// A key moved out of a config: it goes to the store under `name`.
pub struct Move {
    pub name: String,
    pub secret: Zeroizing<String>,
    pub server: Option<String>,
    /// Where the file held it, e.g. `mcpServers.github.env.GITHUB_TOKEN`.
    pub field: String,
    /// How the config refers to it now, e.g. `${env:GITHUB_TOKEN}`, `env_vars`, `wrapper`.
    pub how: String,
    /// The client fills the reference from its own process environment.
    pub from_environment: bool,
    /// The page that documents the reference (none for a wrapper).
    pub source: Option<&'static str>,
}

/// A literal that `fix` leaves where it is, and why.
pub struct Left {
    pub field: String,
    pub reason: String,
}

/// The plan for one config file.
pub struct FilePlan {
    pub client: &'static Client,
    pub path: PathBuf,
    pub format: ConfigFormat,
    /// The bytes the plan was made from: the write is refused when the file no longer holds
    /// exactly these.
    pub original: Vec<u8>,
    /// The new text, when there is anything to change.
    pub edited: Option<String>,
    /// Why the file cannot be edited at all (then nothing in it is moved).
    pub refused: Option<String>,
    pub moves: Vec<Move>,
    pub wrappers: Vec<Wrapper>,
    pub left: Vec<Left>,
    /// Every literal of the file, fixed or not: what the redacted diff hides.
    pub secrets: Vec<Zeroizing<String>>,
}

/// What a plan needs from the run.
pub struct Context<'a> {
    /// Where wrapper scripts go.
    pub wrapper_dir: &'a Path,
    /// How a wrapper loads a key from the store.
    pub store: &'a super::destination::Destination,
    /// Refer to a prompt where the client has one (VS Code's `${input:…}`): the client asks
    /// for the key once and keeps it in its own secret storage.
    pub prompt: bool,
}

/// The shortest key `fix` will look for in a file: anything shorter could stand for
/// something else in it.
const MIN_SECRET: usize = 8;

/// The part of a configured value that is the key: a header's value without its scheme
/// (`Bearer …`).
fn secret_part(value: &str) -> &str {
    crate::mcp::fields::without_auth_scheme(value).unwrap_or(value.trim())
}

/// A reference syntax `fix` can write: it names a variable and nothing else to fill in.
fn writable(reference: &Reference) -> bool {
    reference.syntax.contains("{NAME}")
        && reference.syntax != "{NAME}"
        && !["{DEFAULT}", "{PATH}", "{COMMAND}"]
            .iter()
            .any(|p| reference.syntax.contains(p))
}

/// A reference the client fills from its own process environment (as opposed to its own
/// secret store, `${{ secrets.X }}`, or a prompt, `${input:X}`).
fn reads_environment(reference: &Reference) -> bool {
    !reference.syntax.contains("secrets.") && !reference.syntax.contains("input:")
}

fn prompts(reference: &Reference) -> bool {
    reference.syntax.contains("input:")
}

pub fn render(reference: &Reference, name: &str) -> String {
    reference.syntax.replace("{NAME}", name)
}

/// Whether a reference's `fields` cover a value at `path`: `*`, the server field the value
/// sits in (`env`, `headers`, `args`, `url`), or a dotted pattern of the file.
fn honoured(reference: &Reference, server_field: Option<&str>, path: &[Seg]) -> bool {
    reference.fields.iter().any(|field| {
        *field == "*"
            || server_field == Some(*field)
            || (server_field.is_none() && pattern_matches(field, path))
    })
}

fn pattern_matches(pattern: &str, path: &[Seg]) -> bool {
    let parts: Vec<&str> = pattern.split('.').collect();
    parts.len() == path.len()
        && parts.iter().zip(path).all(|(p, seg)| match seg {
            Seg::Key(k) => *p == "*" || p == k,
            Seg::Index(_) => *p == "*",
        })
}

/// The fields that forward a variable by name (Codex's `env_vars`, `bearer_token_env_var`,
/// `env_http_headers`; Goose's `env_keys`): a reference whose syntax is the bare name.
fn forwarding<'c>(client: &'c Client, field: &str) -> Option<&'c Reference> {
    client
        .references
        .iter()
        .find(|r| r.syntax == "{NAME}" && r.fields.contains(&field))
}

/// The server object that holds `path`, if any: the longest prefix that reads as one.
fn enclosing_server(document: &Value, path: &[Seg]) -> Option<usize> {
    (1..path.len()).rev().find(|&len| {
        document::get(document, &path[..len])
            .and_then(Value::as_object)
            .is_some_and(crate::mcp::fields::looks_like_server)
    })
}

/// A server's name: its key in a map of servers, else its own `name` (a list of servers).
fn server_name(document: &Value, server: &[Seg]) -> Option<String> {
    key_of(server.last()).map(str::to_string).or_else(|| {
        document::get(document, server)?
            .get("name")?
            .as_str()
            .map(str::to_string)
    })
}

const COMMAND_KEYS: &[&str] = &["command", "cmd"];
const ENV_KEYS: &[&str] = &["env", "envs", "environment"];

fn key_of(seg: Option<&Seg>) -> Option<&str> {
    match seg {
        Some(Seg::Key(k)) => Some(k),
        _ => None,
    }
}

/// One literal as met in the document.
struct Found {
    secret: Zeroizing<String>,
    /// The name the config gives it (variable, header, flag), to name it in the store.
    name: Option<String>,
    paths: Vec<DocPath>,
}

/// How one server's literals are fixed.
enum Way<'c> {
    /// The client's own syntax, in place.
    Reference(&'c Reference),
    /// A map entry out, its name into a forwarding field.
    Forward(&'c Reference),
    /// The server started through a wrapper that loads the key.
    Wrapper,
}

/// Plan the fix of one parsed config, read again from disk now.
pub fn plan(config: &ParsedConfig, names: &mut Names, context: &Context) -> FilePlan {
    let client = crate::mcp::client_by_id(config.client)
        .unwrap_or_else(|| crate::mcp::client_by_id("generic").expect("generic client"));
    let format = client
        .file_for(&config.path)
        .map_or_else(|| ConfigFormat::from_path(&config.path), |f| f.format);
    let mut plan = FilePlan {
        client,
        path: std::path::absolute(&config.path).unwrap_or_else(|_| config.path.clone()),
        format,
        original: Vec::new(),
        edited: None,
        refused: None,
        moves: Vec::new(),
        wrappers: Vec::new(),
        left: Vec::new(),
        secrets: Vec::new(),
    };
    match std::fs::read(&config.path) {
        Ok(bytes) => plan.original = bytes,
        Err(e) => {
            plan.refused = Some(format!("cannot be read: {e}"));
            return plan;
        }
    }
    // Written back as text: a file that is not UTF-8 would lose its other bytes.
    let Ok(text) = String::from_utf8(plan.original.clone()) else {
        plan.refused = Some("is not UTF-8 text; move its keys by hand".into());
        return plan;
    };
    let document = match parse_document(format, plan.original.as_slice()) {
        Ok(document) => document,
        Err(e) => {
            plan.refused = Some(format!("does not parse: {e}"));
            return plan;
        }
    };
    let found = literals(config, &document);
    plan.secrets = found.iter().map(|f| f.secret.clone()).collect();
    let mut ops = Vec::new();
    // Literals by the server that holds them (None: outside any server).
    let mut by_server: BTreeMap<Option<DocPath>, Vec<(&Found, DocPath)>> = BTreeMap::new();
    for f in &found {
        if f.secret.len() < MIN_SECRET {
            plan.left.push(Left {
                field: f.paths.first().map(|p| display(p)).unwrap_or_default(),
                reason: format!("shorter than {MIN_SECRET} characters: too short to replace safely; move it by hand"),
            });
            continue;
        }
        if f.paths.is_empty() {
            plan.left.push(Left {
                field: f.name.clone().unwrap_or_default(),
                reason: "not written verbatim in the file (escaped or encoded); move it by hand"
                    .into(),
            });
            continue;
        }
        for path in &f.paths {
            let server = enclosing_server(&document, path).map(|len| path[..len].to_vec());
            by_server.entry(server).or_default().push((f, path.clone()));
        }
    }
    for (server, items) in by_server {
        plan_server(
            &mut plan,
            &mut ops,
            &document,
            server.as_deref(),
            &items,
            names,
            context,
        );
    }
    if ops.is_empty() {
        return plan;
    }
    match document::edit(format, &text, &ops) {
        Ok(edited) => {
            let moved: Vec<&str> = plan.moves.iter().map(|m| m.secret.as_str()).collect();
            if moved.iter().any(|s| edited.contains(s)) {
                plan.refused = Some(EditError::Unverified.to_string());
            } else {
                plan.edited = Some(edited);
            }
        }
        Err(e) => plan.refused = Some(e.to_string()),
    }
    if plan.refused.is_some() {
        plan.moves.clear();
        plan.wrappers.clear();
    }
    plan
}

/// Every literal of the config (servers' and the file's own secret fields), once per key,
/// with every string of the document that holds it.
fn literals(config: &ParsedConfig, document: &Value) -> Vec<Found> {
    let fields = config
        .servers
        .iter()
        .flat_map(|s| s.literal_fields())
        .chain(config.fields.iter().filter(|f| f.class.is_secret()));
    let mut found: Vec<Found> = Vec::new();
    for field in fields {
        let secret = secret_part(&field.value);
        if secret.is_empty() || found.iter().any(|f| f.secret.as_str() == secret) {
            continue;
        }
        found.push(Found {
            secret: Zeroizing::new(secret.to_string()),
            name: field.name.clone(),
            paths: document::strings_holding(document, secret),
        });
    }
    found
}

fn plan_server(
    plan: &mut FilePlan,
    ops: &mut Vec<Op>,
    document: &Value,
    server: Option<&[Seg]>,
    items: &[(&Found, DocPath)],
    names: &mut Names,
    context: &Context,
) {
    let client = plan.client;
    let definition = server.and_then(|s| document::get(document, s));
    let server_name = server.and_then(|s| server_name(document, s));
    let command_key = definition.and_then(|d| {
        COMMAND_KEYS
            .iter()
            .find(|k| d.get(**k).is_some_and(Value::is_string))
            .copied()
    });
    let stdio = command_key.is_some();
    fn field_of<'p>(server: Option<&[Seg]>, path: &'p [Seg]) -> Option<&'p str> {
        server.and_then(|s| key_of(path.get(s.len())))
    }
    // A wrapper when any literal of a stdio server needs one: the client expands nothing
    // there, or it is a desktop app whose environment does not hold the variable.
    let needs_wrapper = stdio
        && items.iter().any(|(_, path)| {
            match choose(client, field_of(server, path), path, context.prompt) {
                Some(Way::Reference(r)) => client.launch == Launch::Desktop && reads_environment(r),
                // Goose's `env_keys` fall back to its keyring, which a desktop app reads.
                Some(Way::Forward(r)) => {
                    client.launch == Launch::Desktop && !r.fields.contains(&"env_keys")
                }
                Some(Way::Wrapper) | None => true,
            }
        });
    if needs_wrapper {
        let (Some(server), Some(command_key)) = (server, command_key) else {
            return;
        };
        if items.iter().any(|(_, path)| {
            field_of(Some(server), path).is_some_and(|f| COMMAND_KEYS.contains(&f))
        }) {
            for (_, path) in items {
                plan.left.push(Left {
                    field: display(path),
                    reason: "the key is part of the command itself; split it into an argument or an environment variable first".into(),
                });
            }
            return;
        }
        wrap(
            plan,
            ops,
            document,
            server,
            command_key,
            items,
            names,
            context,
        );
        return;
    }
    for (found, path) in items {
        let field = field_of(server, path);
        let label = display(path);
        match choose(client, field, path, context.prompt) {
            Some(Way::Reference(reference)) => {
                let name = names.name_for(&found.secret, found.name.as_deref(), server_name.as_deref(), field);
                let with = render(reference, &name);
                if prompts(reference) {
                    if let Some(op) = server.and_then(|s| prompt_input(document, s, &name, server_name.as_deref(), ops)) {
                        ops.push(op);
                    }
                }
                ops.push(Op::Replace {
                    path: path.clone(),
                    part: found.secret.to_string(),
                    with: with.clone(),
                });
                plan.moves.push(Move {
                    name,
                    secret: found.secret.clone(),
                    server: server_name.clone(),
                    field: label,
                    how: with,
                    from_environment: reads_environment(reference),
                    source: Some(reference.source),
                });
            }
            Some(Way::Forward(reference)) => {
                let Some(server) = server else { continue };
                let Some(op) = forward(document, server, path, found, reference, names, server_name.as_deref(), plan) else {
                    continue;
                };
                ops.extend(op);
            }
            Some(Way::Wrapper) | None => plan.left.push(Left {
                field: label,
                reason: format!(
                    "{} expands no reference in `{}` and no wrapper can start it (not a local command); move it by hand",
                    client.name,
                    field.unwrap_or("this field")
                ),
            }),
        }
    }
}

/// VS Code's definition of the input a `${input:NAME}` names, beside the servers map
/// (`inputs` next to `servers`, `mcp.inputs` next to `mcp.servers`), unless one is there.
fn prompt_input(
    document: &Value,
    server: &[Seg],
    name: &str,
    server_name: Option<&str>,
    ops: &[Op],
) -> Option<Op> {
    let (map_key, parent) = match server.split_last()?.1.split_last()? {
        (Seg::Key(key), parent) => (key.as_str(), parent),
        _ => return None,
    };
    let inputs_key = match map_key.strip_suffix("servers") {
        Some(prefix) => format!("{prefix}inputs"),
        None => return None,
    };
    let mut path = parent.to_vec();
    path.push(Seg::Key(inputs_key));
    let defined = |list: &Value| {
        list.as_array().is_some_and(|l| {
            l.iter()
                .any(|i| i.get("id").and_then(Value::as_str) == Some(name))
        })
    };
    let pending = ops.iter().any(|op| matches!(op, Op::Append(p, v) if *p == path && v.get("id").and_then(Value::as_str) == Some(name)));
    if document::get(document, &path).is_some_and(defined) || pending {
        return None;
    }
    Some(Op::Append(
        path,
        serde_json::json!({
            "type": "promptString",
            "id": name,
            "description": format!("Key for MCP server {} (moved by detector fix)", server_name.unwrap_or("?")),
            "password": true,
        }),
    ))
}

/// The way the client can refer to a key at `path` (in the server field `field`).
fn choose<'c>(
    client: &'c Client,
    field: Option<&str>,
    path: &[Seg],
    prompt: bool,
) -> Option<Way<'c>> {
    let usable = |r: &&Reference| writable(r) && honoured(r, field, path);
    let prompted = prompt
        .then(|| client.references.iter().filter(usable).find(|r| prompts(r)))
        .flatten();
    if let Some(reference) = prompted.or_else(|| {
        client
            .references
            .iter()
            .filter(usable)
            .find(|r| !prompts(r))
    }) {
        return Some(Way::Reference(reference));
    }
    let forward = match field {
        Some(f) if ENV_KEYS.contains(&f) => {
            forwarding(client, "env_vars").or_else(|| forwarding(client, "env_keys"))
        }
        Some("headers" | "http_headers") => forwarding(client, "env_http_headers"),
        _ => None,
    };
    if let Some(reference) = forward {
        return Some(Way::Forward(reference));
    }
    field.map(|_| Way::Wrapper)
}

/// The ops that move an env entry or a header out and forward it by name.
#[allow(clippy::too_many_arguments)]
fn forward(
    document: &Value,
    server: &[Seg],
    path: &DocPath,
    found: &Found,
    reference: &Reference,
    names: &mut Names,
    server_name: Option<&str>,
    plan: &mut FilePlan,
) -> Option<Vec<Op>> {
    let field = key_of(path.get(server.len()))?;
    let entry = key_of(path.get(server.len() + 1))?;
    let whole = document::get(document, path).and_then(Value::as_str)?;
    let label = display(path);
    if path.len() != server.len() + 2 {
        plan.left.push(Left {
            field: label,
            reason: "nested deeper than an entry of its map; move it by hand".into(),
        });
        return None;
    }
    let mut at = server.to_vec();
    let ops = if ENV_KEYS.contains(&field) {
        if whole != found.secret.as_str() {
            plan.left.push(Left {
                field: label,
                reason: "the variable holds more than the key; move it by hand".into(),
            });
            return None;
        }
        // The variable keeps its name: the server reads it by that name.
        let Some(name) = names.exact(entry, &found.secret) else {
            plan.left.push(Left {
                field: label,
                reason: format!("another key is already stored as {entry}, and this client forwards a variable only by the name the server reads; move it by hand"),
            });
            return None;
        };
        let list = if reference.fields.contains(&"env_vars") {
            "env_vars"
        } else {
            "env_keys"
        };
        at.push(Seg::Key(list.into()));
        plan.moves.push(Move {
            name: name.clone(),
            secret: found.secret.clone(),
            server: server_name.map(str::to_string),
            field: label,
            how: list.into(),
            from_environment: true,
            source: Some(reference.source),
        });
        vec![
            Op::Remove(path.clone()),
            Op::Append(at, Value::String(name)),
        ]
    } else {
        let name = names.name_for(&found.secret, Some(entry), server_name, Some(field));
        let bearer = entry.eq_ignore_ascii_case("authorization")
            && whole.len() > found.secret.len()
            && whole[..whole.len() - found.secret.len()]
                .trim()
                .eq_ignore_ascii_case("bearer")
            && reference.fields.contains(&"bearer_token_env_var");
        let (op, how) = if bearer {
            at.push(Seg::Key("bearer_token_env_var".into()));
            (Op::Insert(at.clone(), name.clone()), "bearer_token_env_var")
        } else if whole == found.secret.as_str() {
            at.push(Seg::Key("env_http_headers".into()));
            at.push(Seg::Key(entry.to_string()));
            (Op::Insert(at.clone(), name.clone()), "env_http_headers")
        } else {
            plan.left.push(Left {
                field: label,
                reason: "the header holds more than the key; move it by hand".into(),
            });
            return None;
        };
        plan.moves.push(Move {
            name,
            secret: found.secret.clone(),
            server: server_name.map(str::to_string),
            field: label,
            how: how.into(),
            from_environment: true,
            source: Some(reference.source),
        });
        vec![Op::Remove(path.clone()), op]
    };
    Some(ops)
}

/// Start the server through a wrapper: the command becomes the wrapper, the arguments go
/// into it (each key in them as its variable), and the env entries that held keys leave the
/// config (the wrapper exports them, loaded from the store).
#[allow(clippy::too_many_arguments)]
fn wrap(
    plan: &mut FilePlan,
    ops: &mut Vec<Op>,
    document: &Value,
    server: &[Seg],
    command_key: &str,
    items: &[(&Found, DocPath)],
    names: &mut Names,
    context: &Context,
) {
    let server_name = server_name(document, server).unwrap_or_else(|| "server".into());
    let definition = document::get(document, server);
    let command = definition
        .and_then(|d| d.get(command_key))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let args: Vec<String> = definition
        .and_then(|d| d.get("args"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut keys = Vec::new();
    let mut exports = Vec::new();
    for (found, path) in items {
        let field = key_of(path.get(server.len()));
        let entry = key_of(path.get(server.len() + 1));
        let name = match (field, entry) {
            (Some(f), Some(e)) if ENV_KEYS.contains(&f) => names.exact(e, &found.secret),
            _ => None,
        }
        .unwrap_or_else(|| {
            names.name_for(
                &found.secret,
                found.name.as_deref(),
                Some(&server_name),
                field,
            )
        });
        let label = display(path);
        match (field, entry) {
            (Some(f), Some(e))
                if ENV_KEYS.contains(&f)
                    && path.len() == server.len() + 2
                    && wrapper::is_shell_name(e) =>
            {
                let value = document::get(document, path)
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                exports.push((e.to_string(), value.to_string()));
                ops.push(Op::Remove(path.clone()));
            }
            (Some(f), Some(_)) if ENV_KEYS.contains(&f) && path.len() == server.len() + 2 => {
                plan.left.push(Left {
                    field: label,
                    reason: "a shell cannot set a variable of that name, so no wrapper can; move it by hand".into(),
                });
                continue;
            }
            (Some("args"), _) => {}
            _ => {
                plan.left.push(Left {
                    field: label,
                    reason: "a wrapper cannot carry a key from this field; move it by hand".into(),
                });
                continue;
            }
        }
        if !keys.iter().any(|(_, n)| *n == name) {
            keys.push((found.secret.to_string(), name.clone()));
        }
        if !plan.moves.iter().any(|m| m.secret == found.secret) {
            plan.moves.push(Move {
                name,
                secret: found.secret.clone(),
                server: Some(server_name.clone()),
                field: label,
                how: "wrapper".into(),
                from_environment: false,
                source: None,
            });
        }
    }
    let wrapper = wrapper::Wrapper::new(
        context.wrapper_dir,
        plan.client.id,
        &plan.path,
        &server_name,
        &command,
        &args,
        &exports,
        &keys,
        context.store,
    );
    let mut at = server.to_vec();
    at.push(Seg::Key(command_key.into()));
    ops.push(Op::SetString(at, wrapper.path.display().to_string()));
    if definition
        .and_then(|d| d.get("args"))
        .is_some_and(Value::is_array)
    {
        let mut at = server.to_vec();
        at.push(Seg::Key("args".into()));
        ops.push(Op::ClearList(at));
    }
    plan.wrappers.push(wrapper);
}
