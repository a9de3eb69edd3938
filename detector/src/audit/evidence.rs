//! One blob's matches → findings: each occurrence of a secret with its location, and, in an
//! MCP config, the server and field that hold it. A literal secret in a server field that no
//! rule recognised is still a finding (`mcp-literal-secret`): the config says it is a secret.
use std::{collections::HashSet, path::Path, sync::Arc};

use super::{key::McpServerRef, location::Location, scope::secret_manager_ids};
use crate::{
    detect::{
        filter::{is_literal_secret, is_suppressed},
        value::{classify, ValueClass},
        LineCounter, Match, RuleMeta, Severity,
    },
    mcp::{servers::Credential, McpServer, ParsedConfig, SecretField},
    source::{
        container::Place as WorkloadPlace,
        secret_file::{Secrecy, SecretFile, SecretFileKind},
        Blob, LocationKind,
    },
};

/// The rule id of a literal secret in an MCP server field that no rule matched.
pub const MCP_LITERAL_RULE: &str = "mcp-literal-secret";
/// The rule id of a literal secret in a credential file's secret field (`.netrc` password,
/// `aws_secret_access_key`, …) that no rule matched.
pub const FILE_LITERAL_RULE: &str = "file-literal-secret";

/// One occurrence of a secret. Lives in memory only; the report gets [`super::Key`]s.
#[derive(Debug, Clone)]
pub struct Finding {
    pub secret: String,
    pub rule: Arc<RuleMeta>,
    pub location: Location,
    pub project: String,
    /// Every server field in the same config that holds this secret.
    pub mcp_servers: Vec<McpServerRef>,
    /// Words that may name an environment: server name, relative path, variable name.
    pub context: Vec<String>,
    /// What the catalogue says the server field holding it carries: whose key it is and
    /// where such keys are rotated.
    pub credential: Option<&'static Credential>,
}

/// What the engine found in one blob: in its bytes, and in the decoded value of each field
/// of its credential file (a base64 `auth`; empty for fields that are not encoded).
#[derive(Debug, Default)]
pub struct BlobMatches {
    pub matches: Vec<Match>,
    pub in_fields: Vec<Vec<Match>>,
}

fn file_literal(kind: SecretFileKind) -> Arc<RuleMeta> {
    Arc::new(RuleMeta {
        id: FILE_LITERAL_RULE.to_string(),
        provider: kind.provider().to_string(),
        description: format!(
            "A literal secret in a secret field of a credential file ({})",
            kind.as_str()
        ),
        severity: Severity::High,
        rank: RuleMeta::FALLBACK_RANK,
        environment_hints: Vec::new(),
    })
}

fn mcp_literal() -> Arc<RuleMeta> {
    Arc::new(RuleMeta {
        id: MCP_LITERAL_RULE.to_string(),
        provider: "unknown".to_string(),
        description: "A literal secret in an MCP server's config field".to_string(),
        severity: Severity::High,
        rank: RuleMeta::FALLBACK_RANK,
        environment_hints: Vec::new(),
    })
}

/// A literal secret-bearing field of a server in the blob's config.
struct LiteralField<'a> {
    server: &'a McpServer,
    field: &'a SecretField,
    /// The value without an auth scheme (`Bearer …`).
    secret: &'a str,
}

/// Turn one blob's matches into findings.
pub fn findings(blob: &Blob, found: &BlobMatches) -> Vec<Finding> {
    let matches = &found.matches;
    let literals = blob.mcp.as_deref().map(literal_fields).unwrap_or_default();
    let mut covered = vec![false; literals.len()];
    let file = blob.fields.as_deref();
    let mut file_covered = vec![false; file.map_or(0, |f| f.fields.len())];
    let index = file.map(FieldIndex::new);
    // Each loop below looks up positions in ascending order, mostly: one count of lines each.
    let mut lines = LineCounter::default();
    let mut out = Vec::new();
    for m in matches {
        // The rule's own word on the environment (`sk_live_` → production) joins the context.
        let rule_environment = m.rule.environment(&m.secret).map(str::to_string);
        let holders: Vec<usize> = literals
            .iter()
            .enumerate()
            .filter(|(_, f)| holds(f.secret, &m.secret))
            .map(|(i, _)| i)
            .collect();
        for &i in &holders {
            covered[i] = true;
        }
        let refs: Vec<McpServerRef> = if holders.is_empty() {
            value_refs(blob.mcp.as_deref(), &m.secret)
        } else {
            holders
                .iter()
                .map(|&i| server_ref(blob.mcp.as_deref(), &literals[i]))
                .collect()
        };
        let credential = refs
            .iter()
            .find_map(|r| credential_of(blob.mcp.as_deref(), r));
        let positions: Vec<Option<(usize, usize)>> = if m.spans.is_empty() {
            vec![None]
        } else {
            m.spans.iter().map(|s| Some((s.line, s.column))).collect()
        };
        let count = positions.len();
        for (nth, position) in positions.into_iter().enumerate() {
            let holder = pick_holder(&holders, &literals, nth, count, m.slot.as_deref());
            // In a credential file, the field the match sits in names the slot.
            let held_at = index
                .as_ref()
                .zip(m.spans.get(nth))
                .and_then(|(index, span)| index.at(span.start));
            let held_by = held_at.and_then(|i| file.map(|f| &f.fields[i]));
            // An encoded value (a Secret's base64 `data`) is scanned decoded: what matches its
            // encoded form is not a key of its own.
            if held_by.is_some_and(|f| f.decoded.is_some()) {
                continue;
            }
            if let Some(i) = held_at {
                file_covered[i] = true;
            }
            let field = held_by.map(|f| f.slot.clone());
            let workload = held_by.and_then(|f| f.place.clone());
            let mut found = finding(
                blob,
                true,
                Occurrence {
                    secret: &m.secret,
                    rule: Arc::clone(&m.rule),
                    position,
                    holder: holder.map(|i| &literals[i]),
                    slot: field.or_else(|| m.slot.clone()),
                    mcp_servers: refs.clone(),
                    workload,
                },
            );
            found.context.extend(rule_environment.clone());
            found.credential = credential;
            out.push(found);
        }
    }

    // Literal values no rule recognised, each at its own occurrence in the file.
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for (i, literal) in literals.iter().enumerate() {
        if covered[i] || covered_elsewhere(&literals, &covered, literal.secret) {
            continue;
        }
        let nth = match seen.iter_mut().find(|(s, _)| *s == literal.secret) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                seen.push((literal.secret, 0));
                0
            }
        };
        let start = nth_occurrence(&blob.bytes, literal.secret, nth);
        // `detector:allow` on its line: the engine left it out, and so does this fallback.
        if start.is_some_and(|at| is_suppressed(&blob.bytes, at, at + literal.secret.len())) {
            continue;
        }
        let position = start.map(|at| lines.locate(&blob.bytes, at));
        let refs = literals
            .iter()
            .filter(|l| l.secret == literal.secret)
            .map(|l| server_ref(blob.mcp.as_deref(), l))
            .collect();
        out.push(finding(
            blob,
            true,
            Occurrence {
                secret: literal.secret,
                rule: mcp_literal(),
                position,
                holder: Some(literal),
                slot: literal.field.name.clone(),
                mcp_servers: refs,
                workload: None,
            },
        ));
    }
    if let Some(config) = blob.mcp.as_deref() {
        config_field_findings(blob, config, &mut lines, &mut out);
    }
    if let Some(file) = file {
        // A field that holds a key a rule found is that key, wherever its places were cut
        // short (see the pipeline's limit of places per object).
        let matched: HashSet<&str> = matches.iter().map(|m| m.secret.as_str()).collect();
        for (field, covered) in file.fields.iter().zip(&mut file_covered) {
            *covered =
                *covered || (field.decoded.is_none() && matched.contains(field.value.trim()));
        }
        out.extend(file_field_findings(
            blob,
            file,
            &mut lines,
            &file_covered,
            &found.in_fields,
        ));
    }
    let shared = blob_secret_manager_names(blob);
    if !shared.is_empty() {
        for found in &mut out {
            found.context.extend(shared.iter().cloned());
        }
    }
    out
}

/// Secret fields of an MCP config outside its servers (an LLM provider's `apiKey`): a key a
/// rule found in one is named by the field's path; a literal no rule recognised that looks
/// like a secret is a finding of its own (`mcp-literal-secret`), at its field.
fn config_field_findings(
    blob: &Blob,
    config: &ParsedConfig,
    lines: &mut LineCounter,
    out: &mut Vec<Finding>,
) {
    for field in config
        .fields
        .iter()
        .filter(|f| f.class == ValueClass::Literal)
    {
        let secret = crate::detect::value::strip_auth_scheme(field.value.trim());
        if secret.is_empty() {
            continue;
        }
        let mut held = false;
        for found in out.iter_mut() {
            if found.location.mcp_server.is_none() && holds(secret, &found.secret) {
                held = true;
                found.location.slot = Some(field.field.clone());
                found.context.push(field.field.clone());
            }
        }
        // A local model's `apiKey: "ollama"` is a name, not a key: unmatched, a value must
        // look like a secret.
        if held || !is_literal_secret(secret) {
            continue;
        }
        let start = nth_occurrence(&blob.bytes, secret, 0);
        if start.is_some_and(|at| is_suppressed(&blob.bytes, at, at + secret.len())) {
            continue;
        }
        let mut found = finding(
            blob,
            true,
            Occurrence {
                secret,
                rule: mcp_literal(),
                position: start.map(|at| lines.locate(&blob.bytes, at)),
                holder: None,
                slot: Some(field.field.clone()),
                mcp_servers: Vec::new(),
                workload: None,
            },
        );
        found.context.push(field.field.clone());
        out.push(found);
    }
}

/// The names of the secret-manager references a server keeps its other secrets in: where
/// they live (`op://prod-vault/…`, `…:secret:staging/…`) says which environment the server,
/// and so a literal key beside them, serves. A reference by command (`vault kv get
/// secret/prod/x`) with no id in it counts as a whole.
fn server_secret_manager_names(server: &McpServer) -> Vec<String> {
    let mut names: Vec<String> = server
        .fields
        .iter()
        .filter(|f| f.class == ValueClass::SecretManager)
        .flat_map(|f| {
            let ids = secret_manager_ids(&f.value);
            if ids.is_empty() {
                vec![f.value.clone()]
            } else {
                ids
            }
        })
        .collect();
    names.extend(server.argv.iter().flat_map(|arg| secret_manager_ids(arg)));
    names
}

/// Secret-manager references anywhere in a blob that speaks for one set of secrets: a
/// credential file's values (a `.env` whose database password comes from
/// `…:secret:prod/db`), or an MCP config with one server, whose ids may sit under names the
/// parser does not keep (`GCP_SECRET_NAME=projects/…/secrets/prod-…`). A config of several
/// servers gives each server its own (see [`server_secret_manager_names`]): one config may
/// hold a production and a development server.
fn blob_secret_manager_names(blob: &Blob) -> Vec<String> {
    if let Some(file) = blob.fields.as_deref() {
        return file
            .fields
            .iter()
            .flat_map(|f| secret_manager_ids(&f.value))
            .collect();
    }
    match blob.mcp.as_deref() {
        Some(config) if config.servers.len() == 1 => {
            secret_manager_ids(&String::from_utf8_lossy(&blob.bytes))
        }
        _ => Vec::new(),
    }
}

/// Secret fields of a credential file that no match covered: the credential inside an
/// encoded value as the engine sees it, else the literal itself (`file-literal-secret`).
/// References and placeholders are not secrets; a value in a variable named like a secret
/// must also look like one.
fn file_field_findings(
    blob: &Blob,
    file: &SecretFile,
    lines: &mut LineCounter,
    covered: &[bool],
    in_fields: &[Vec<Match>],
) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, field) in file.fields.iter().enumerate().filter(|(i, _)| !covered[*i]) {
        if is_suppressed(&blob.bytes, field.range.start, field.range.end) {
            continue;
        }
        let position = Some(lines.locate(&blob.bytes, field.range.start));
        let slot = Some(field.slot.clone());
        let value = field.decoded.as_deref().unwrap_or(&field.value);
        let literal = match field.secrecy {
            Secrecy::No => continue,
            Secrecy::Named => is_literal_secret(value),
            Secrecy::Field => classify(value) == ValueClass::Literal,
        };
        if !literal {
            continue;
        }
        let inner = in_fields.get(i).map(Vec::as_slice).unwrap_or_default();
        if field.decoded.is_some() && !inner.is_empty() {
            for m in inner {
                out.push(finding(
                    blob,
                    false,
                    Occurrence {
                        secret: &m.secret,
                        rule: Arc::clone(&m.rule),
                        position,
                        holder: None,
                        slot: slot.clone(),
                        mcp_servers: Vec::new(),
                        workload: field.place.clone(),
                    },
                ));
            }
            continue;
        }
        out.push(finding(
            blob,
            false,
            Occurrence {
                secret: value.trim(),
                rule: file_literal(file.kind),
                position,
                holder: None,
                slot,
                mcp_servers: Vec::new(),
                workload: field.place.clone(),
            },
        ));
    }
    out
}

/// A credential file's fields by where their values start, to find the field that holds a
/// byte with a binary search: a file of a million fields costs a million lookups, not a
/// million scans of it.
struct FieldIndex<'a> {
    file: &'a SecretFile,
    /// Field indexes, by the start of their values.
    by_start: Vec<usize>,
}

impl<'a> FieldIndex<'a> {
    fn new(file: &'a SecretFile) -> FieldIndex<'a> {
        let mut by_start: Vec<usize> = (0..file.fields.len()).collect();
        by_start.sort_by_key(|&i| (file.fields[i].range.start, i));
        FieldIndex { file, by_start }
    }

    /// The field whose value holds byte `at`.
    fn at(&self, at: usize) -> Option<usize> {
        let fields = &self.file.fields;
        let after = self
            .by_start
            .partition_point(|&i| fields[i].range.start <= at);
        self.by_start[..after]
            .iter()
            .rev()
            .take_while(|&&i| fields[i].range.start + MAX_FIELD_OVERLAP > at)
            .copied()
            .filter(|&i| fields[i].range.contains(&at))
            .min()
    }
}

/// How far back from a byte a field holding it may start and still be looked at: fields do
/// not overlap in practice; this bounds the walk back if a parser ever makes them.
const MAX_FIELD_OVERLAP: usize = 64 * 1024;

/// 1-based (line, byte column) of a byte offset.
#[cfg(test)]
fn byte_position(haystack: &[u8], start: usize) -> (usize, usize) {
    LineCounter::default().locate(haystack, start)
}

/// One occurrence of a secret in a blob, before it becomes a [`Finding`].
struct Occurrence<'a> {
    secret: &'a str,
    rule: Arc<RuleMeta>,
    /// 1-based line and byte column.
    position: Option<(usize, usize)>,
    /// The MCP server field that holds it.
    holder: Option<&'a LiteralField<'a>>,
    slot: Option<String>,
    mcp_servers: Vec<McpServerRef>,
    /// The workload value that holds it (Compose, Kubernetes, a container).
    workload: Option<WorkloadPlace>,
}

/// The finding of an occurrence in `blob`; `in_config`: it sits in the blob's MCP config
/// (not in a decoded field of a credential file).
fn finding(blob: &Blob, in_config: bool, occurrence: Occurrence<'_>) -> Finding {
    let Occurrence {
        secret,
        rule,
        position,
        holder,
        slot,
        mcp_servers,
        workload,
    } = occurrence;
    let slot = slot.or_else(|| holder.and_then(|h| h.field.name.clone()));
    // An MCP config's path is the client's choice (`…/saoudrizwan.claude-dev/…`) and says
    // nothing about the key; any other file's path may (`deploy/prod/.env`).
    let mut context = Vec::new();
    if blob.provenance.origin.kind() != LocationKind::McpConfig {
        context.push(relative_path(blob));
    }
    // Held by a value of a server that is not a secret field (an argument, an id beside its
    // secret): the first such server and value stand for the holder.
    let by_value = holder
        .is_none()
        .then(|| mcp_servers.first())
        .flatten()
        .filter(|_| in_config);
    if let Some(h) = holder {
        context.push(h.server.name.clone());
        context.push(h.field.field.clone());
        context.extend(server_secret_manager_names(h.server));
    } else if let Some(r) = by_value {
        context.push(r.server.clone());
        context.push(r.field.clone());
    }
    context.extend(slot.clone());
    // A workload's namespace and name often say where it runs (`prod/api`).
    if let Some(place) = &workload {
        context.extend(place.workload.namespace.clone());
        context.push(place.workload.name.clone());
    }
    let project = holder
        .and_then(|h| h.server.project.clone())
        .or_else(|| by_value.and_then(|r| r.project.clone()))
        .unwrap_or_else(|| blob.project.clone());
    if let Some(p) = Path::new(&project).file_name() {
        context.push(p.to_string_lossy().into_owned());
    }
    let config = blob.mcp.as_deref().filter(|_| in_config);
    let location = Location {
        line: position.map(|p| p.0),
        column: position.map(|p| p.1),
        mcp_client: config.map(|c| c.client.to_string()),
        mcp_server: holder
            .map(|h| h.server.name.clone())
            .or_else(|| by_value.map(|r| r.server.clone())),
        mcp_field: holder
            .map(|h| h.field.field.clone())
            .or_else(|| by_value.map(|r| r.field.clone())),
        slot,
        workload,
        ..Location::at(blob.provenance.clone())
    };
    Finding {
        secret: secret.to_string(),
        rule,
        location,
        project,
        mcp_servers,
        context,
        credential: None,
    }
}

fn literal_fields(config: &ParsedConfig) -> Vec<LiteralField<'_>> {
    config
        .servers
        .iter()
        .flat_map(|server| server.fields.iter().map(move |field| (server, field)))
        .filter(|(_, field)| field.class == ValueClass::Literal)
        .filter_map(|(server, field)| {
            let secret = crate::detect::value::strip_auth_scheme(field.value.trim());
            (!secret.is_empty()).then_some(LiteralField {
                server,
                field,
                secret,
            })
        })
        .collect()
}

/// A field holds a matched secret when its value contains it, or (the rule matched more
/// than the value, e.g. with quotes) when the secret contains the whole value.
fn holds(field_secret: &str, matched: &str) -> bool {
    field_secret.contains(matched) || (field_secret.len() >= 8 && matched.contains(field_secret))
}

/// The holder of the `nth` of `count` occurrences: the field named like the match's slot,
/// else the nth holder when there is one per occurrence, else the first.
fn pick_holder(
    holders: &[usize],
    literals: &[LiteralField<'_>],
    nth: usize,
    count: usize,
    slot: Option<&str>,
) -> Option<usize> {
    if holders.len() == count {
        return holders.get(nth).copied();
    }
    if let Some(slot) = slot {
        if let Some(&i) = holders
            .iter()
            .find(|&&i| literals[i].field.name.as_deref() == Some(slot))
        {
            return Some(i);
        }
    }
    holders.first().copied()
}

fn covered_elsewhere(literals: &[LiteralField<'_>], covered: &[bool], secret: &str) -> bool {
    literals
        .iter()
        .zip(covered)
        .any(|(l, &c)| c && l.secret == secret)
}

fn server_ref(config: Option<&ParsedConfig>, literal: &LiteralField<'_>) -> McpServerRef {
    McpServerRef {
        client: literal.server.client.clone(),
        server: literal.server.name.clone(),
        config: config
            .map(|c| c.path.clone())
            .unwrap_or_else(|| literal.server.config.clone()),
        field: literal.field.field.clone(),
        project: literal.server.project.clone(),
    }
}

/// What the catalogue says the field of `r` carries, when its server is a known one.
fn credential_of(config: Option<&ParsedConfig>, r: &McpServerRef) -> Option<&'static Credential> {
    let server = config?
        .servers
        .iter()
        .find(|s| s.name == r.server && s.project == r.project)?;
    let name = server
        .fields
        .iter()
        .find(|f| f.field == r.field)
        .and_then(|f| f.name.as_deref());
    server.known?.credential_for(&r.field, name)
}

/// The servers of `config` with a value that holds `secret` although no secret field does (a
/// positional argument, JSON inside an argument, `env.AWS_ACCESS_KEY_ID` beside its secret),
/// each named by that value's path.
fn value_refs(config: Option<&ParsedConfig>, secret: &str) -> Vec<McpServerRef> {
    let Some(config) = config else {
        return Vec::new();
    };
    config
        .servers
        .iter()
        .flat_map(|server| {
            server
                .values
                .iter()
                .filter(|(_, value)| value.contains(secret))
                .map(move |(path, _)| McpServerRef {
                    client: server.client.clone(),
                    server: server.name.clone(),
                    config: config.path.clone(),
                    field: path.clone(),
                    project: server.project.clone(),
                })
        })
        .collect()
}

/// Where the `nth` occurrence of `needle` starts (the first one when there are fewer).
fn nth_occurrence(haystack: &[u8], needle: &str, nth: usize) -> Option<usize> {
    memchr::memmem::find_iter(haystack, needle.as_bytes())
        .nth(nth)
        .or_else(|| memchr::memmem::find(haystack, needle.as_bytes()))
}

/// The path as it reads under the scanned directory (for environment words): the directories
/// above the scan root say nothing about the key.
fn relative_path(blob: &Blob) -> String {
    let path = &blob.provenance.path;
    match path.strip_prefix(&blob.root) {
        Ok(rel) if !blob.root.as_os_str().is_empty() => rel.display().to_string(),
        _ => path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::audit::{key::Environment, scope::environments_in};

    #[test]
    fn positions_are_one_based_byte_columns() {
        let text = "a\nkey: é tok123\nx tok123";
        let position = |nth| {
            nth_occurrence(text.as_bytes(), "tok123", nth)
                .map(|at| byte_position(text.as_bytes(), at))
        };
        assert_eq!(position(0), Some((2, 9)));
        assert_eq!(position(1), Some((3, 3)));
        assert_eq!(position(5), Some((2, 9)), "fewer occurrences: the first");
        assert_eq!(nth_occurrence(text.as_bytes(), "absent", 0), None);
    }

    #[test]
    fn auth_schemes_are_not_part_of_the_secret() {
        assert!(holds("Bearer-less value abcdefgh", "abcdefgh"));
        assert!(holds("abcdefgh", "\"abcdefgh\""));
        assert!(!holds("abc", "xabcx"), "short values must equal the match");
    }

    /// A fake token made at run time: `prefix` and 36 pseudo-random characters.
    fn fake_token(prefix: &str, seed: u64) -> String {
        kit::keys::key(prefix, kit::keys::ALNUM, 36, seed)
    }

    /// The environments the findings of `secret` name, as the audit infers them.
    fn environments(found: &[Finding], secret: &str) -> BTreeSet<Environment> {
        let of_secret: Vec<&Finding> = found.iter().filter(|f| f.secret == secret).collect();
        assert!(!of_secret.is_empty(), "no finding of the key");
        of_secret
            .iter()
            .flat_map(|f| f.context.iter())
            .flat_map(|text| environments_in(text))
            .collect()
    }

    fn config_findings(path: &str, config: &serde_json::Value) -> Vec<Finding> {
        let engine =
            crate::detect::Engine::new(crate::detect::RuleSet::builtin().unwrap()).unwrap();
        let bytes = serde_json::to_vec_pretty(config).unwrap();
        let parsed = crate::mcp::parse(&crate::mcp::recognise(Path::new(path)).unwrap(), &bytes);
        assert_eq!(parsed.parse_error, None);
        let blob = Blob {
            provenance: crate::source::Provenance {
                path: path.into(),
                origin: crate::source::Origin::McpConfig(Default::default()),
                backup: None,
            },
            project: "user:al".into(),
            root: "/home/al".into(),
            mcp: Some(Arc::new(parsed)),
            fields: None,
            bytes,
        };
        let matches = BlobMatches {
            matches: engine.scan(&blob.bytes),
            in_fields: Vec::new(),
        };
        findings(&blob, &matches)
    }

    #[test]
    fn secret_manager_ids_of_the_same_server_name_its_environment() {
        let billing = fake_token("ghp_", 1);
        let tools = fake_token("ghp_", 2);
        let account = "123456789012";
        // Neither server's name says the environment; where its other secrets live does.
        let config = serde_json::json!({"mcpServers": {
            "billing": {"command": "npx", "args": ["billing-mcp"], "env": {
                "GITHUB_TOKEN": billing,
                "DB_PASSWORD": format!("arn:aws:secretsmanager:us-east-1:{account}:secret:staging/billing-db-Xy12Ab"),
            }},
            "tools": {"command": "npx", "args": ["tools-mcp", "--secret", "op://dev-vault/tools/token"],
                "env": {"GITHUB_TOKEN": tools}},
        }});
        let found = config_findings("/home/al/.cursor/mcp.json", &config);
        assert_eq!(
            environments(&found, &billing),
            [Environment::Staging].into()
        );
        assert_eq!(
            environments(&found, &tools),
            [Environment::Development].into()
        );

        // A config of one server: an id under a name the parser keeps no field for counts.
        let only = fake_token("ghp_", 3);
        let config = serde_json::json!({"mcpServers": {"payments": {
        "command": "npx", "args": ["payments-mcp"], "env": {
            "GITHUB_TOKEN": only,
            "GCP_SECRET_NAME": "projects/acme/secrets/prod-payments/versions/latest",
        }}}});
        let found = config_findings("/home/al/.cursor/mcp.json", &config);
        assert_eq!(
            environments(&found, &only),
            [Environment::Production].into()
        );
    }
}
