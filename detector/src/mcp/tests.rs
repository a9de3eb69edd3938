//! Configs of many clients in their real formats, built at test time. Fake keys are assembled
//! at run time so that no key-shaped literal sits in the source.
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::detect::value::ValueClass;

use super::*;

fn fake_key(prefix: &str, unit: &str) -> String {
    [prefix, &unit.repeat(12)].concat()
}

fn parse_at(path: &str, text: &str) -> ParsedConfig {
    let config = recognise(Path::new(path)).unwrap_or_else(|| panic!("{path} not recognised"));
    let parsed = parse(&config, text.as_bytes());
    assert_eq!(parsed.parse_error, None, "{path}");
    parsed
}

fn server<'a>(parsed: &'a ParsedConfig, name: &str) -> &'a McpServer {
    parsed
        .servers
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no server {name} in {:?}", names(parsed)))
}

fn names(parsed: &ParsedConfig) -> Vec<&str> {
    parsed.servers.iter().map(|s| s.name.as_str()).collect()
}

fn field<'a>(server: &'a McpServer, field: &str) -> &'a SecretField {
    server
        .fields
        .iter()
        .find(|f| f.field == field)
        .unwrap_or_else(|| {
            let have: Vec<&str> = server.fields.iter().map(|f| f.field.as_str()).collect();
            panic!("no field {field} in {}: {have:?}", server.name)
        })
}

fn class_of(server: &McpServer, name: &str) -> ValueClass {
    field(server, name).class
}

fn passes(server: &McpServer, check: &str) -> bool {
    server
        .check(check)
        .unwrap_or_else(|| panic!("no check {check}"))
        .pass
}

#[test]
fn claude_desktop_env_literals_references_placeholders() {
    let github = fake_key("ghp_", "Qw7z");
    let text = json!({
        "mcpServers": {
            "github": {
                "command": "npx",
                "args": ["-y", "@modelcontextprotocol/server-github"],
                "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": github, "GITHUB_TOOLSETS": "repos"}
            },
            "brave": {
                "command": "npx",
                "env": {"BRAVE_API_KEY": "${BRAVE_API_KEY}"}
            },
            "docs": {
                "command": "uvx",
                "env": {"ZEP_API_KEY": "<your_api_key_here>", "OTHER_TOKEN": ""}
            },
            "fs": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]}
        }
    })
    .to_string();
    let parsed = parse_at(
        "/home/alice/.config/Claude/claude_desktop_config.json",
        &text,
    );
    assert_eq!(parsed.client, "claude-desktop");
    assert_eq!(parsed.servers.len(), 4);

    let gh = server(&parsed, "github");
    let f = field(gh, "env.GITHUB_PERSONAL_ACCESS_TOKEN");
    assert_eq!(f.class, ValueClass::Literal);
    assert_eq!(f.value, github);
    assert_eq!(f.name.as_deref(), Some("GITHUB_PERSONAL_ACCESS_TOKEN"));
    assert_eq!(gh.fields.len(), 1, "GITHUB_TOOLSETS is not secret-bearing");
    assert_eq!(gh.transport, "stdio");
    assert_eq!(gh.command.as_deref(), Some("npx"));
    assert_eq!(gh.user.as_deref(), Some("alice"));
    assert_eq!(gh.project, None);
    assert!(!passes(gh, "env-injection"));
    assert!(!passes(gh, "secret-manager"));
    assert!(passes(gh, "per-project-key"));

    let brave = server(&parsed, "brave");
    assert_eq!(class_of(brave, "env.BRAVE_API_KEY"), ValueClass::EnvRef);
    assert!(passes(brave, "env-injection"));
    assert!(!passes(brave, "secret-manager"));

    let docs = server(&parsed, "docs");
    assert_eq!(class_of(docs, "env.ZEP_API_KEY"), ValueClass::Placeholder);
    assert_eq!(class_of(docs, "env.OTHER_TOKEN"), ValueClass::Empty);
    assert!(passes(docs, "env-injection"));
    assert!(passes(docs, "secret-manager"));

    assert!(server(&parsed, "fs").fields.is_empty());
}

#[test]
fn claude_code_user_and_project_servers_share_a_key() {
    let shared = fake_key("sk-proj-", "Ab3x");
    let own = fake_key("sk-proj-", "Zr8m");
    let text = json!({
        "numStartups": 12,
        "mcpServers": {
            "linear": {
                "type": "http",
                "url": "https://mcp.linear.app/mcp",
                "headers": {"Authorization": "Bearer ${LINEAR_TOKEN}"}
            }
        },
        "projects": {
            "/work/shop": {
                "allowedTools": [],
                "mcpServers": {"openai": {"command": "npx", "env": {"OPENAI_API_KEY": shared}}}
            },
            "/work/blog": {
                "mcpServers": {"openai": {"command": "npx", "env": {"OPENAI_API_KEY": shared}}}
            },
            "/work/own": {
                "mcpServers": {"openai": {"command": "npx", "env": {"OPENAI_API_KEY": own}}}
            },
            "/work/empty": {"mcpServers": {}}
        }
    })
    .to_string();
    let parsed = parse_at("/home/bob/.claude.json", &text);
    assert_eq!(parsed.client, "claude-code");
    assert_eq!(parsed.servers.len(), 4);

    let linear = server(&parsed, "linear");
    assert_eq!(linear.transport, "http");
    assert_eq!(linear.project, None);
    assert_eq!(linear.url.as_deref(), Some("https://mcp.linear.app"));
    assert_eq!(
        class_of(linear, "headers.Authorization"),
        ValueClass::EnvRef
    );

    let by_project = |dir: &str| {
        parsed
            .servers
            .iter()
            .find(|s| s.project.as_deref() == Some(dir))
            .unwrap()
    };
    let shop = by_project("/work/shop");
    let blog = by_project("/work/blog");
    let own_server = by_project("/work/own");
    assert_eq!(class_of(shop, "env.OPENAI_API_KEY"), ValueClass::Literal);
    assert!(!passes(shop, "per-project-key"));
    assert!(!passes(blog, "per-project-key"));
    assert!(shop
        .check("per-project-key")
        .unwrap()
        .reason
        .contains("/work/blog"));
    assert!(passes(own_server, "per-project-key"));
    assert!(passes(linear, "per-project-key"));
}

#[test]
fn claude_code_project_mcp_json() {
    let text = json!({
        "mcpServers": {
            "sentry": {"command": "npx", "env": {"SENTRY_AUTH_TOKEN": "${SENTRY_TOKEN:-}"}},
            "db": {"command": "npx", "env": {"DATABASE_URL": "postgres://app:${DB_PASSWORD}@db:5432/app"}}
        }
    })
    .to_string();
    let parsed = parse_at("/work/proj/.mcp.json", &text);
    assert_eq!(parsed.client, "claude-code");
    let sentry = server(&parsed, "sentry");
    assert_eq!(sentry.project.as_deref(), Some("/work/proj"));
    assert_eq!(sentry.user, None);
    assert_eq!(
        class_of(sentry, "env.SENTRY_AUTH_TOKEN"),
        ValueClass::EnvRef
    );
    let db = server(&parsed, "db");
    assert_eq!(
        class_of(db, "env.DATABASE_URL@password"),
        ValueClass::EnvRef
    );
}

#[test]
fn cursor_url_query_keys() {
    let key = fake_key("", "Kd9s");
    let text = json!({
        "mcpServers": {
            "smithery": {"url": format!("https://server.smithery.ai/exa/mcp?apiKey={key}&profile=dev&token=${{env:EXA_TOKEN}}")},
            "sse": {"url": "https://mcp.example.net/sse"}
        }
    })
    .to_string();
    let parsed = parse_at("/home/carol/.cursor/mcp.json", &text);
    assert_eq!(parsed.client, "cursor");
    let s = server(&parsed, "smithery");
    assert_eq!(s.transport, "http");
    assert_eq!(class_of(s, "url?apiKey"), ValueClass::Literal);
    assert_eq!(field(s, "url?apiKey").value, key);
    assert_eq!(class_of(s, "url?token"), ValueClass::EnvRef);
    assert_eq!(s.fields.len(), 2, "profile is not secret-bearing");
    assert_eq!(s.url.as_deref(), Some("https://server.smithery.ai"));
    assert_eq!(server(&parsed, "sse").transport, "sse");
}

#[test]
fn vscode_jsonc_with_inputs_comments_and_trailing_commas() {
    let text = r#"{
  // Inputs are prompted for and kept by VS Code.
  "inputs": [
    {"type": "promptString", "id": "perplexity-key", "description": "Perplexity API Key", "password": true},
  ],
  "servers": {
    /* a block comment */
    "perplexity": {
      "type": "stdio",
      "command": "npx",
      "args": ["-y", "server-perplexity-ask"],
      "env": {"PERPLEXITY_API_KEY": "${input:perplexity-key}",},
    },
    "github": {
      "type": "http",
      "url": "https://api.githubcopilot.com/mcp/",
      "headers": {"Authorization": "Bearer ${input:github_token}"},
    },
  },
}"#;
    let parsed = parse_at("/srv/app/.vscode/mcp.json", text);
    assert_eq!(parsed.client, "vscode");
    assert_eq!(parsed.servers.len(), 2, "inputs are not servers");
    let p = server(&parsed, "perplexity");
    assert_eq!(p.project.as_deref(), Some("/srv/app"));
    assert_eq!(
        class_of(p, "env.PERPLEXITY_API_KEY"),
        ValueClass::InputPrompt
    );
    assert!(passes(p, "secret-manager"));
    assert!(passes(p, "env-injection"));
    let gh = server(&parsed, "github");
    assert_eq!(
        class_of(gh, "headers.Authorization"),
        ValueClass::InputPrompt
    );
}

#[test]
fn vscode_user_settings_mcp_servers() {
    let key = fake_key("tvly-", "Pq2w");
    let nested = json!({
        "editor.fontSize": 13,
        "mcp": {"servers": {"tavily": {"command": "npx", "env": {"TAVILY_API_KEY": key}}}}
    })
    .to_string();
    let parsed = parse_at("/home/dan/.config/Code/User/settings.json", &nested);
    assert_eq!(parsed.client, "vscode");
    assert_eq!(
        class_of(server(&parsed, "tavily"), "env.TAVILY_API_KEY"),
        ValueClass::Literal
    );

    let flat =
        json!({"mcp.servers": {"tavily": {"command": "npx", "env": {"TAVILY_API_KEY": key}}}})
            .to_string();
    let parsed = parse_at(
        "/Users/dan/Library/Application Support/Code/User/settings.json",
        &flat,
    );
    assert_eq!(parsed.servers.len(), 1);
    assert!(matches!(
        recognise(Path::new("/Users/dan/Library/Application Support/Code/User/settings.json"))
            .unwrap()
            .scope,
        ConfigScope::User(ref u) if u == "dan"
    ));
}

#[test]
fn zed_jsonc_context_servers() {
    let key = fake_key("", "Mn4b");
    let pat = fake_key("github_pat_", "Hy6t");
    let text = format!(
        r#"// Zed settings
{{
  "theme": "One Dark",
  "context_servers": {{
    "exa": {{
      "source": "custom",
      "command": "npx",
      "args": ["-y", "exa-mcp-server"],
      "env": {{ "EXA_API_KEY": "{key}", }}, // trailing comma
    }},
    "mcp-server-github": {{
      "source": "extension",
      "settings": {{ "github_personal_access_token": "{pat}" }},
    }},
    "legacy": {{
      "command": {{ "path": "node", "args": ["server.js", "--api-key", "$LEGACY_KEY"], "env": {{}} }},
    }},
  }},
}}"#
    );
    let parsed = parse_at("/home/erin/.config/zed/settings.json", &text);
    assert_eq!(parsed.client, "zed");
    assert_eq!(
        class_of(server(&parsed, "exa"), "env.EXA_API_KEY"),
        ValueClass::Literal
    );
    let gh = server(&parsed, "mcp-server-github");
    let f = field(gh, "settings.github_personal_access_token");
    assert_eq!(
        (f.class, f.value.as_str()),
        (ValueClass::Literal, pat.as_str())
    );
    let legacy = server(&parsed, "legacy");
    assert_eq!(legacy.command.as_deref(), Some("node"));
    assert_eq!(class_of(legacy, "command[3]"), ValueClass::EnvRef);
}

#[test]
fn codex_toml_tables() {
    let token = fake_key("ghp_", "Lk3j");
    let api = fake_key("", "Vb5n");
    let text = format!(
        r#"model = "o4-mini"

[projects."/work/api"]
trust_level = "trusted"

[mcp_servers.github]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-github"]
env = {{ GITHUB_PERSONAL_ACCESS_TOKEN = "{token}", LOG_LEVEL = "info" }}

[mcp_servers.figma]
url = "https://mcp.figma.com/mcp"
bearer_token_env_var = "FIGMA_OAUTH_TOKEN"
http_headers = {{ "X-Api-Key" = "{api}", "X-Figma-Region" = "us-east-1" }}
env_http_headers = {{ "X-Org-Token" = "FIGMA_ORG_TOKEN" }}
"#
    );
    let parsed = parse_at("/home/fay/.codex/config.toml", &text);
    assert_eq!(parsed.client, "codex");
    let gh = server(&parsed, "github");
    assert_eq!(
        class_of(gh, "env.GITHUB_PERSONAL_ACCESS_TOKEN"),
        ValueClass::Literal
    );
    assert_eq!(gh.fields.len(), 1);
    let figma = server(&parsed, "figma");
    assert_eq!(figma.transport, "http");
    let bearer = field(figma, "bearer_token_env_var");
    assert_eq!(bearer.class, ValueClass::EnvRef);
    assert_eq!(bearer.name.as_deref(), Some("FIGMA_OAUTH_TOKEN"));
    assert_eq!(
        class_of(figma, "http_headers.X-Api-Key"),
        ValueClass::Literal
    );
    assert_eq!(
        class_of(figma, "env_http_headers.X-Org-Token"),
        ValueClass::EnvRef
    );
    assert_eq!(figma.fields.len(), 3);
}

#[test]
fn goose_yaml_extensions() {
    let key = fake_key("", "Rt8y");
    let text = format!(
        r#"GOOSE_PROVIDER: anthropic
extensions:
  developer:
    enabled: true
    type: builtin
    name: developer
  github:
    enabled: true
    type: stdio
    name: github
    cmd: npx
    args: [-y, "@modelcontextprotocol/server-github"]
    envs:
      GITHUB_API_URL: https://api.github.com
    env_keys:
      - GITHUB_PERSONAL_ACCESS_TOKEN
    timeout: 300
  search:
    type: streamable_http
    uri: https://search.example.io/mcp
    headers:
      X-Api-Key: {key}
"#
    );
    let parsed = parse_at("/home/gus/.config/goose/config.yaml", &text);
    assert_eq!(parsed.client, "goose");
    assert_eq!(names(&parsed), vec!["github", "search"]);
    let gh = server(&parsed, "github");
    assert_eq!(gh.command.as_deref(), Some("npx"));
    let f = field(gh, "env_keys[0]");
    assert_eq!(f.class, ValueClass::SecretManager);
    assert!(passes(gh, "secret-manager"));
    let search = server(&parsed, "search");
    assert_eq!(search.transport, "http");
    assert_eq!(class_of(search, "headers.X-Api-Key"), ValueClass::Literal);
}

#[test]
fn continue_yaml_list_and_block_files() {
    let text = r#"name: my-assistant
version: 0.0.1
schema: v1
mcpServers:
  - name: GitHub
    command: npx
    args: ["-y", "@modelcontextprotocol/server-github"]
    env:
      GITHUB_PERSONAL_ACCESS_TOKEN: ${{ secrets.GITHUB_TOKEN }}
  - name: Remote
    type: streamable-http
    url: https://mcp.example.org/mcp
"#;
    let parsed = parse_at("/home/hal/.continue/config.yaml", text);
    assert_eq!(parsed.client, "continue");
    let gh = server(&parsed, "GitHub");
    assert_eq!(
        class_of(gh, "env.GITHUB_PERSONAL_ACCESS_TOKEN"),
        ValueClass::EnvRef
    );
    assert_eq!(server(&parsed, "Remote").transport, "http");

    // Anchors and merge keys share an env block between servers.
    let key = fake_key("", "Ee3r");
    let merged = format!(
        "shared: &shared\n  SEARCH_API_KEY: {key}\nmcpServers:\n  - name: one\n    command: npx\n    env:\n      <<: *shared\n      MODE: fast\n"
    );
    let parsed = parse_at("/home/hal/.continue/config.yaml", &merged);
    assert_eq!(
        class_of(&parsed.servers[0], "env.SEARCH_API_KEY"),
        ValueClass::Literal
    );

    let block = "name: Playwright\nversion: 0.0.1\nschema: v1\nmcpServers:\n  - name: Browser\n    command: npx\n    args: [\"@playwright/mcp@latest\"]\n";
    let parsed = parse_at("/srv/site/.continue/mcpServers/playwright.yaml", block);
    assert_eq!(parsed.servers[0].project.as_deref(), Some("/srv/site"));

    let legacy = json!({"experimental": {"modelContextProtocolServers": [
        {"transport": {"type": "stdio", "command": "uvx", "args": ["mcp-server-sqlite", "--db-path", "/tmp/x.db"],
         "env": {"SQLITE_PASSWORD": "${SQLITE_PASSWORD}"}}}
    ]}})
    .to_string();
    let parsed = parse_at("/home/hal/.continue/config.json", &legacy);
    let s = &parsed.servers[0];
    assert_eq!(s.name, "#0");
    assert_eq!(s.command.as_deref(), Some("uvx"));
    assert_eq!(class_of(s, "env.SQLITE_PASSWORD"), ValueClass::EnvRef);
}

#[test]
fn opencode_command_array_environment_and_headers() {
    let key = fake_key("", "Wq1e");
    let text = format!(
        r#"{{
  "$schema": "https://opencode.ai/config.json",
  // local and remote servers
  "mcp": {{
    "context7": {{
      "type": "local",
      "command": ["npx", "-y", "@upstash/context7-mcp", "--api-key", "{key}"],
      "environment": {{ "CONTEXT7_TOKEN": "{{env:CONTEXT7_TOKEN}}" }},
      "enabled": true,
    }},
    "remote": {{
      "type": "remote",
      "url": "https://mcp.example.dev/mcp",
      "headers": {{ "Authorization": "Bearer {{env:REMOTE_TOKEN}}" }},
    }},
  }},
}}"#
    );
    let parsed = parse_at("/work/app/opencode.json", &text);
    assert_eq!(parsed.client, "opencode");
    let c7 = server(&parsed, "context7");
    assert_eq!(c7.project.as_deref(), Some("/work/app"));
    assert_eq!(c7.command.as_deref(), Some("npx"));
    let f = field(c7, "command[4]");
    assert_eq!(
        (f.class, f.name.as_deref()),
        (ValueClass::Literal, Some("api-key"))
    );
    assert_eq!(
        class_of(c7, "environment.CONTEXT7_TOKEN"),
        ValueClass::EnvRef
    );
    let remote = server(&parsed, "remote");
    assert_eq!(remote.transport, "http");
    assert_eq!(
        class_of(remote, "headers.Authorization"),
        ValueClass::EnvRef
    );

    // v2 nests the servers under `mcp.servers`.
    let v2 = json!({"mcp": {"servers": {"one": {"type": "local", "command": ["uvx", "one"]}}}})
        .to_string();
    let parsed = parse_at("/home/ivy/.config/opencode/opencode.json", &v2);
    assert_eq!(names(&parsed), vec!["one"]);
}

#[test]
fn gemini_windsurf_lmstudio_copilot_junie_kiro_amazonq() {
    let key = fake_key("AIza", "Gh5j");
    let gemini = json!({"mcpServers": {
        "remote": {"httpUrl": "https://mcp.example.com/mcp", "headers": {"x-goog-api-key": key}},
        "local": {"command": "node", "args": ["s.js"], "env": {"API_TOKEN": "$API_TOKEN"}}
    }})
    .to_string();
    let parsed = parse_at("/home/jo/.gemini/settings.json", &gemini);
    assert_eq!(parsed.client, "gemini-cli");
    let remote = server(&parsed, "remote");
    assert_eq!(remote.transport, "http");
    assert_eq!(
        class_of(remote, "headers.x-goog-api-key"),
        ValueClass::Literal
    );
    assert_eq!(
        class_of(server(&parsed, "local"), "env.API_TOKEN"),
        ValueClass::EnvRef
    );

    let windsurf =
        json!({"mcpServers": {"w": {"serverUrl": format!("https://w.example.com/mcp?key={key}")}}})
            .to_string();
    let parsed = parse_at("/home/jo/.codeium/windsurf/mcp_config.json", &windsurf);
    assert_eq!(parsed.client, "windsurf");
    assert_eq!(
        class_of(&parsed.servers[0], "serverUrl?key"),
        ValueClass::Literal
    );

    let api = fake_key("", "Tg4h");
    let docker = json!({"mcpServers": {"d": {"command": "docker",
        "args": ["run", "-i", "--rm", "-e", format!("API_KEY={api}"), "-e", "GITHUB_TOKEN", "img"]}}})
    .to_string();
    for (path, client) in [
        ("/home/jo/.lmstudio/mcp.json", "lm-studio"),
        ("/home/jo/.copilot/mcp-config.json", "copilot-cli"),
        ("/home/jo/.junie/mcp/mcp.json", "junie"),
        ("/srv/app/.junie/mcp/mcp.json", "junie"),
        ("/home/jo/.kiro/settings/mcp.json", "kiro"),
        ("/home/jo/.aws/amazonq/mcp.json", "amazon-q"),
        ("/srv/app/.amazonq/mcp.json", "amazon-q"),
    ] {
        let parsed = parse_at(path, &docker);
        assert_eq!(parsed.client, client, "{path}");
        let d = &parsed.servers[0];
        let f = field(d, "args[4]");
        assert_eq!(
            (f.class, f.name.as_deref()),
            (ValueClass::Literal, Some("API_KEY"))
        );
        assert_eq!(d.fields.len(), 1, "a pass-through -e NAME carries no value");
    }
}

#[test]
fn shell_wrappers_and_secret_managers() {
    let inline = fake_key("ghp_", "Nb2v");
    let text = json!({"mcpServers": {
        "aws": {"command": "bash", "args": ["-c",
            "OPENAI_API_KEY=$(aws secretsmanager get-secret-value --secret-id prod/openai --query SecretString --output text) npx -y openai-mcp"]},
        "vault": {"command": "sh -c 'export SLACK_BOT_TOKEN=$(vault kv get -field=token secret/slack) && exec npx -y slack-mcp'"},
        "inline": {"command": format!("GITHUB_TOKEN={inline} npx -y @modelcontextprotocol/server-github")},
        "onepassword": {"command": "npx", "env": {"NOTION_TOKEN": "op://Engineering/Notion/credential"}},
        "gcloud": {"command": "npx", "env": {"STRIPE_SECRET_KEY": "$(gcloud secrets versions access latest --secret=stripe)"}},
        "file": {"command": "bash", "args": ["-lc", "export LINEAR_API_KEY=\"$(cat ~/.config/linear/key)\"; exec linear-mcp"]}
    }})
    .to_string();
    let parsed = parse_at("/srv/app/.roo/mcp.json", &text);
    assert_eq!(parsed.client, "roo-code");

    let aws = server(&parsed, "aws");
    assert_eq!(aws.command.as_deref(), Some("bash"));
    assert_eq!(
        class_of(aws, "command:OPENAI_API_KEY"),
        ValueClass::SecretManager
    );
    assert_eq!(aws.fields.len(), 1);
    assert!(passes(aws, "secret-manager"));

    let vault = server(&parsed, "vault");
    assert_eq!(vault.command.as_deref(), Some("sh"));
    assert_eq!(
        class_of(vault, "command:SLACK_BOT_TOKEN"),
        ValueClass::SecretManager
    );

    let inline_server = server(&parsed, "inline");
    assert_eq!(inline_server.command.as_deref(), Some("npx"));
    let f = field(inline_server, "command:GITHUB_TOKEN");
    assert_eq!(
        (f.class, f.value.as_str()),
        (ValueClass::Literal, inline.as_str())
    );
    assert!(!passes(inline_server, "env-injection"));

    assert_eq!(
        class_of(server(&parsed, "onepassword"), "env.NOTION_TOKEN"),
        ValueClass::SecretManager
    );
    assert_eq!(
        class_of(server(&parsed, "gcloud"), "env.STRIPE_SECRET_KEY"),
        ValueClass::SecretManager
    );
    let file = server(&parsed, "file");
    assert_eq!(class_of(file, "command:LINEAR_API_KEY"), ValueClass::EnvRef);
    assert!(passes(file, "env-injection"));
    assert!(!passes(file, "secret-manager"));
}

#[test]
fn cline_mcp_remote_header_args_and_flags() {
    let bearer = fake_key("", "Cx7u");
    let token = fake_key("", "Jm3k");
    let text = json!({"mcpServers": {
        "remote": {"command": "npx", "args": ["mcp-remote", "https://mcp.example.com/sse",
            "--header", format!("Authorization: Bearer {bearer}")]},
        "env-header": {"command": "npx", "args": ["mcp-remote", "https://mcp.example.com/mcp",
            "--header", "Authorization:${AUTH_HEADER}"], "env": {"AUTH_HEADER": "Bearer ${TOKEN}"}},
        "flags": {"command": "uvx", "args": ["server", format!("--token={token}"), "--api-key", "${input:key}", "--port", "3000"]}
    }})
    .to_string();
    let parsed = parse_at(
        "/home/kim/.config/Code/User/globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json",
        &text,
    );
    assert_eq!(parsed.client, "cline");
    let remote = server(&parsed, "remote");
    let f = field(remote, "args[3]");
    assert_eq!(f.class, ValueClass::Literal);
    assert_eq!(f.value, format!("Bearer {bearer}"));
    assert_eq!(f.name.as_deref(), Some("Authorization"));

    let env_header = server(&parsed, "env-header");
    assert_eq!(class_of(env_header, "args[3]"), ValueClass::EnvRef);
    assert_eq!(class_of(env_header, "env.AUTH_HEADER"), ValueClass::EnvRef);

    let flags = server(&parsed, "flags");
    let f = field(flags, "args[1]");
    assert_eq!(
        (f.class, f.value.as_str()),
        (ValueClass::Literal, token.as_str())
    );
    assert_eq!(f.name.as_deref(), Some("token"));
    assert_eq!(class_of(flags, "args[3]"), ValueClass::InputPrompt);
    assert_eq!(flags.fields.len(), 2);

    // Cline inside Cursor, and the CLI's own file.
    assert!(recognise(Path::new(
        "/home/kim/.config/Cursor/User/globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json"
    ))
    .is_some_and(|c| c.client.id == "cline"));
    assert!(recognise(Path::new(
        "/home/kim/.cline/data/settings/cline_mcp_settings.json"
    ))
    .is_some_and(|c| c.client.id == "cline"));
}

#[test]
fn broken_files_report_their_error() {
    for (path, text) in [
        (
            "/home/lee/.cursor/mcp.json",
            r#"{"mcpServers": {"x": {"command": "npx", "#,
        ),
        (
            "/home/lee/.codex/config.toml",
            "[mcp_servers.x\ncommand = 1",
        ),
        (
            "/home/lee/.config/goose/config.yaml",
            "extensions:\n  - a: [\n",
        ),
        ("/home/lee/.cursor/mcp.json", ""),
    ] {
        let config = recognise(Path::new(path)).unwrap();
        let parsed = parse(&config, text.as_bytes());
        assert!(parsed.parse_error.is_some(), "{path}: {text}");
        assert!(parsed.servers.is_empty());
    }
    // Deep nesting is refused, not recursed into.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let config = recognise(Path::new("/home/lee/.cursor/mcp.json")).unwrap();
    assert!(parse(&config, deep.as_bytes()).parse_error.is_some());
    // Not UTF-8, not an object: no panic, no servers.
    let parsed = parse(&config, &[0xff, 0xfe, b'[', b'1', b']']);
    assert!(parsed.servers.is_empty());
}

/// A config of `n` tiny elements in the layout of `path`'s format, with one server first.
fn tiny_elements(path: &str, n: usize) -> String {
    let key = fake_key("sk-", "Qp3w");
    match ConfigFormat::from_path(Path::new(path)) {
        ConfigFormat::Json | ConfigFormat::Jsonc => format!(
            r#"{{"{}": {{"s": {{"command": "npx", "env": {{"OPENAI_API_KEY": "{key}"}}}}}}, "x": [{}]}}"#,
            if path.contains("Code") { "servers" } else { "mcpServers" },
            vec!["0"; n].join(",")
        ),
        ConfigFormat::Toml => format!(
            "[mcp_servers.s]\ncommand = \"npx\"\nenv = {{ OPENAI_API_KEY = \"{key}\" }}\n[x]\na = [{}]\n",
            vec!["0"; n].join(",")
        ),
        ConfigFormat::Yaml | ConfigFormat::Frontmatter => format!(
            "mcpServers:\n  - name: s\n    command: npx\n    env:\n      OPENAI_API_KEY: {key}\nx: [{}]\n",
            vec!["0"; n].join(",")
        ),
    }
}

#[test]
fn configs_over_the_parse_budget_are_refused_before_they_are_parsed() {
    for path in [
        "/home/lee/.cursor/mcp.json",
        "/home/lee/.config/Code/User/mcp.json",
        "/home/lee/.codex/config.toml",
        "/home/lee/.continue/config.yaml",
    ] {
        let format = ConfigFormat::from_path(Path::new(path));
        let budget = parse::element_budget(format);
        // Within the budget: parsed, its server found.
        let parsed = parse_at(path, &tiny_elements(path, budget - 100));
        assert_eq!(names(&parsed), ["s"], "{path}");
        // Over it: refused, saying so, quoting nothing.
        let config = recognise(Path::new(path)).unwrap();
        let parsed = parse(&config, tiny_elements(path, budget + 1).as_bytes());
        let error = parsed
            .parse_error
            .unwrap_or_else(|| panic!("{path} parsed"));
        assert_eq!(
            error,
            format!("config has more than {budget} elements (values, keys and tables): not parsed"),
            "{path}"
        );
        assert!(parsed.servers.is_empty());
    }
    // Over the size budget: refused before anything is counted.
    let config = recognise(Path::new("/home/lee/.cursor/mcp.json")).unwrap();
    let mut big = vec![b' '; parse::MAX_CONFIG_BYTES];
    big.extend_from_slice(b"{}");
    let error = parse(&config, &big).parse_error.unwrap();
    assert!(
        error.starts_with(&format!(
            "config is larger than {} bytes",
            parse::MAX_CONFIG_BYTES
        )),
        "{error}"
    );
}

#[test]
fn yaml_aliases_cannot_expand_past_the_budget() {
    // A thousand values copied by four hundred aliases: a few kilobytes (within the budget
    // as its text is counted, and within serde_norway's own repetition limit) standing for
    // 400,000 values.
    let text = format!(
        "a: &a [{}]\nb: [{}]\n",
        vec!["x"; 1000].join(", "),
        vec!["*a"; 400].join(", ")
    );
    let config = recognise(Path::new("/home/lee/.continue/config.yaml")).unwrap();
    let error = parse(&config, text.as_bytes()).parse_error.unwrap();
    assert!(error.starts_with("config has more than"), "{error}");

    // Aliases and merges of a real config still work, tags are read through, and a
    // duplicate key is refused without quoting it.
    let key = fake_key("sk-", "Zr5t");
    let parsed = parse_at(
        "/home/lee/.continue/config.yaml",
        &format!(
            "defaults: &env\n  OPENAI_API_KEY: {key}\nmcpServers:\n  - name: a\n    command: !cmd npx\n    env:\n      <<: *env\n"
        ),
    );
    let a = server(&parsed, "a");
    assert_eq!(a.command.as_deref(), Some("npx"));
    assert_eq!(field(a, "env.OPENAI_API_KEY").value, key);
    let parsed = parse(
        &config,
        format!("mcpServers: []\n{key}: 1\n{key}: 2\n").as_bytes(),
    );
    let error = parsed.parse_error.unwrap();
    assert!(!error.contains(&key), "{error}");
}

#[test]
fn secrets_are_never_serialized() {
    let key = fake_key("sk-ant-api03-", "Fd8s");
    let text = json!({"mcpServers": {"a": {
        "command": format!("ANTHROPIC_API_KEY={key} npx"),
        "args": [format!("--api-key={key}"), format!("https://u:{key}@h.example.com/?token={key}")],
        "env": {"ANTHROPIC_API_KEY": key}
    }}})
    .to_string();
    let parsed = parse_at("/home/max/.cursor/mcp.json", &text);
    assert!(parsed.servers[0].fields.len() >= 4);
    let out = serde_json::to_string(&parsed).unwrap();
    assert!(!out.contains(&key), "{out}");
    assert!(!out.contains(&key[14..30]));
}

#[test]
fn per_project_check_runs_across_configs() {
    let key = fake_key("sk-", "Yu6i");
    let config = || {
        json!({"mcpServers": {"s": {"command": "npx", "env": {"OPENAI_API_KEY": key}}}}).to_string()
    };
    let a = parse_at("/work/a/.cursor/mcp.json", &config());
    let b = parse_at("/work/b/.mcp.json", &config());
    assert!(passes(&a.servers[0], "per-project-key"));
    let mut all: Vec<McpServer> = a.servers.into_iter().chain(b.servers).collect();
    check_per_project_keys(&mut all);
    assert!(all.iter().all(|s| !passes(s, "per-project-key")));
    assert!(all.iter().all(|s| s
        .checks
        .iter()
        .filter(|c| c.check == "per-project-key")
        .count()
        == 1));
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

#[test]
fn discover_finds_global_and_known_project_configs() {
    let tmp = tempfile::tempdir().unwrap();
    let home_dir = tmp.path().join("home/nia");
    let project = tmp.path().join("code/shop");
    let gone = tmp.path().join("code/deleted");
    let servers = r#"{"mcpServers": {}}"#;
    write(
        &home_dir.join(".claude.json"),
        &json!({"projects": {
            project.display().to_string(): {"mcpServers": {}},
            gone.display().to_string(): {}
        }})
        .to_string(),
    );
    write(&home_dir.join(".cursor/mcp.json"), servers);
    write(
        &home_dir.join(".config/Code/User/mcp.json"),
        r#"{"servers": {}}"#,
    );
    write(
        &home_dir.join(".continue/mcpServers/a.yaml"),
        "mcpServers: []",
    );
    write(
        &home_dir.join(".config/goose/config.yaml"),
        "extensions: {}",
    );
    write(
        &home_dir.join(".config/VSCodium/User/globalStorage/rooveterinaryinc.roo-cline/settings/mcp_settings.json"),
        servers,
    );
    write(&home_dir.join(".cursor/rules.txt"), "not a config");
    write(&project.join(".mcp.json"), servers);
    write(&project.join(".vscode/mcp.json"), r#"{"servers": {}}"#);
    write(&project.join(".cursor/mcp.json"), servers);
    write(&project.join("opencode.json"), "{}");
    write(
        &project.join(".continue/mcpServers/gh.yml"),
        "mcpServers: []",
    );

    let home = Home {
        user: "nia".into(),
        uid: 1000,
        dir: home_dir.clone(),
    };
    let found = discover(&home);
    let summary: Vec<(String, &str, String)> = found
        .iter()
        .map(|c| {
            let rel = c
                .path
                .strip_prefix(tmp.path())
                .unwrap()
                .display()
                .to_string();
            let scope = match &c.scope {
                ConfigScope::User(u) => format!("user:{u}"),
                ConfigScope::Project(p) => {
                    format!("project:{}", p.strip_prefix(tmp.path()).unwrap().display())
                }
                ConfigScope::System => "system".to_string(),
            };
            (rel, c.client.id, scope)
        })
        .collect();
    let expect = |rel: &str, client: &str, scope: &str| {
        assert!(
            summary.contains(&(rel.to_string(), client, scope.to_string())),
            "{rel} {client} {scope} missing from {summary:#?}"
        );
    };
    expect("home/nia/.claude.json", "claude-code", "user:nia");
    expect("home/nia/.cursor/mcp.json", "cursor", "user:nia");
    expect("home/nia/.config/Code/User/mcp.json", "vscode", "user:nia");
    expect(
        "home/nia/.continue/mcpServers/a.yaml",
        "continue",
        "user:nia",
    );
    expect("home/nia/.config/goose/config.yaml", "goose", "user:nia");
    expect(
        "home/nia/.config/VSCodium/User/globalStorage/rooveterinaryinc.roo-cline/settings/mcp_settings.json",
        "roo-code",
        "user:nia",
    );
    expect("code/shop/.mcp.json", "claude-code", "project:code/shop");
    expect("code/shop/.vscode/mcp.json", "vscode", "project:code/shop");
    expect("code/shop/.cursor/mcp.json", "cursor", "project:code/shop");
    expect("code/shop/opencode.json", "opencode", "project:code/shop");
    expect(
        "code/shop/.continue/mcpServers/gh.yml",
        "continue",
        "project:code/shop",
    );
    assert_eq!(summary.len(), 11, "{summary:#?}");

    let watch = config_paths(&home);
    assert_eq!(watch.len(), 6);
    assert!(watch.iter().all(|p| p.starts_with(&home_dir)));
}

#[test]
fn recognise_project_and_global_paths() {
    let scope_of = |p: &str| recognise(Path::new(p)).map(|c| (c.client.id, c.scope));
    let project = |p: &str| ConfigScope::Project(PathBuf::from(p));
    let user = |u: &str| ConfigScope::User(u.to_string());

    assert_eq!(
        scope_of("/srv/app/.cursor/mcp.json"),
        Some(("cursor", project("/srv/app")))
    );
    assert_eq!(
        scope_of("/home/bob/.cursor/mcp.json"),
        Some(("cursor", user("bob")))
    );
    assert_eq!(
        scope_of("/root/.cursor/mcp.json"),
        Some(("cursor", user("root")))
    );
    assert_eq!(
        scope_of("/srv/app/.vscode/mcp.json"),
        Some(("vscode", project("/srv/app")))
    );
    assert_eq!(
        scope_of("/srv/app/.mcp.json"),
        Some(("claude-code", project("/srv/app")))
    );
    assert_eq!(
        scope_of("/srv/app/opencode.json"),
        Some(("opencode", project("/srv/app")))
    );
    assert_eq!(
        scope_of("/home/bob/.config/opencode/opencode.json"),
        Some(("opencode", user("bob")))
    );
    assert_eq!(
        scope_of("/srv/app/.zed/settings.json"),
        Some(("zed", project("/srv/app")))
    );
    assert_eq!(
        scope_of("/srv/app/.gemini/settings.json"),
        Some(("gemini-cli", project("/srv/app")))
    );
    assert_eq!(
        scope_of("/srv/app/.kiro/settings/mcp.json"),
        Some(("kiro", project("/srv/app")))
    );
    assert_eq!(
        scope_of("/srv/app/.codex/config.toml"),
        Some(("codex", project("/srv/app")))
    );
    assert_eq!(
        scope_of("/srv/app/.continue/mcpServers/gh.yaml"),
        Some(("continue", project("/srv/app")))
    );
    assert_eq!(
        scope_of("/srv/app/.roo/mcp.json"),
        Some(("roo-code", project("/srv/app")))
    );
    // Inside an image layer or archive: relative paths.
    assert_eq!(
        scope_of("home/eve/.claude.json"),
        Some(("claude-code", user("eve")))
    );
    assert_eq!(scope_of(".cursor/mcp.json"), Some(("cursor", project("."))));
    // A backup in an unknown place.
    assert_eq!(
        scope_of("/backups/2024/.claude.json"),
        Some(("claude-code", user("unknown")))
    );
    // Copies of client files elsewhere, and generic names.
    assert_eq!(
        scope_of("/srv/dotfiles/claude_desktop_config.json"),
        Some(("claude-desktop", project("/srv/dotfiles")))
    );
    assert_eq!(
        scope_of("/srv/x/mcp.json"),
        Some(("generic", project("/srv/x")))
    );
    // Not configs.
    assert_eq!(scope_of("/srv/app/package.json"), None);
    assert_eq!(scope_of("/srv/app/.vscode/settings.json"), None);
    assert_eq!(scope_of("/srv/app/settings.json"), None);
}

#[test]
fn generic_config_reads_common_shapes() {
    let key = fake_key("sk-", "Op0i");
    let text = json!({"servers": {"x": {"command": "npx", "env": {"API_KEY": key}}}}).to_string();
    let parsed = parse_at("/srv/repo/config/mcp.json", &text);
    assert_eq!(parsed.client, "generic");
    assert_eq!(
        class_of(&parsed.servers[0], "env.API_KEY"),
        ValueClass::Literal
    );
}

/// Content alone makes an MCP config of an unknown client: opencode's `mcp` map (remote
/// servers too) and a `servers` map, in a file no client names and in a nameless blob (a git
/// object); a file that merely mentions the words holds no server.
#[test]
fn server_maps_are_recognised_by_content() {
    let key = fake_key("sk-", "Cnt4");
    let opencode_like = json!({"mcp": {"search": {
        "type": "local", "command": ["npx", "-y", "search-mcp"], "environment": {"API_KEY": key}
    }}})
    .to_string();
    let remote = json!({"mcp": {"docs": {
        "type": "remote", "url": "https://mcp.docs.test/mcp", "headers": {"X-Api-Key": key}
    }}})
    .to_string();
    let toml = format!(
        "[mcp.servers.search]\ncommand = \"npx\"\n[mcp.servers.search.env]\nAPI_KEY = \"{key}\"\n"
    );
    for (name, text, server_name) in [
        ("/srv/x/agent.json", opencode_like.as_str(), "search"),
        ("/srv/x/tools.json", remote.as_str(), "docs"),
        ("/srv/x/agent.toml", toml.as_str(), "search"),
    ] {
        let config = discover::recognise_content(Path::new(name), text.as_bytes())
            .unwrap_or_else(|| panic!("{name} not recognised"));
        let parsed = parse(&config, text.as_bytes());
        assert_eq!(parsed.client, "generic", "{name}");
        assert_eq!(names(&parsed), [server_name], "{name}");
        let unnamed = read_unnamed(Path::new("0123abcd"), "proj", text.as_bytes())
            .unwrap_or_else(|| panic!("{name} not read without its name"));
        assert_eq!(names(&unnamed), [server_name], "{name}");
        assert_eq!(unnamed.path, Path::new("0123abcd"));
        assert_eq!(unnamed.servers[0].project.as_deref(), Some("proj"));
    }
    let mentions = json!({"docs": "set mcp servers with a command or a url"}).to_string();
    assert!(read_unnamed(Path::new("0123abcd"), "proj", mentions.as_bytes()).is_none());
}

/// A document in `format` holding `servers` at each of `layouts`.
fn config_with(format: ConfigFormat, layouts: &[ServerLayout], servers: &Value) -> String {
    let mut document = serde_json::Map::new();
    for layout in layouts {
        let (path, servers) = match layout {
            ServerLayout::At(path) => (path.to_string(), servers.clone()),
            ServerLayout::ClaudeProjects => (
                "projects".to_string(),
                json!({"/srv/p": {"mcpServers": servers}}),
            ),
        };
        // `a.b` as nested objects (a flat `"a.b"` key is matched too, nesting is the norm).
        let mut value = servers;
        for part in path.rsplit('.') {
            value = json!({ part: value });
        }
        merge(&mut document, value);
    }
    let document = Value::Object(document);
    match format {
        ConfigFormat::Json | ConfigFormat::Jsonc => document.to_string(),
        ConfigFormat::Toml => toml::to_string(&document).unwrap(),
        ConfigFormat::Yaml => serde_norway::to_string(&document).unwrap(),
        ConfigFormat::Frontmatter => format!(
            "---\n{}---\n# An agent\n",
            serde_norway::to_string(&document).unwrap()
        ),
    }
}

fn merge(into: &mut serde_json::Map<String, Value>, value: Value) {
    let Value::Object(map) = value else { return };
    for (k, v) in map {
        match (into.get_mut(&k), v) {
            (Some(Value::Object(have)), Value::Object(more)) => merge(have, Value::Object(more)),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// Every file of every client in the catalogue: a config written at its path is recognised
/// as a config of a client that lists that path (several clients share `.mcp.json`), and,
/// read as this client's, gives the server at each place the catalogue says servers sit.
#[test]
fn every_catalogue_file_is_recognised_and_its_servers_read() {
    let key = fake_key("sk-", "Cata");
    let servers = json!({"srv": {"command": "npx", "env": {"OPENAI_API_KEY": key}}});
    let mut files = 0;
    for client in clients() {
        // `generic` is no client but the names MCP configs go by when no client is known.
        assert!(
            client.id == "generic" || !client.sources.is_empty(),
            "{}: no sources",
            client.id
        );
        for file in client.files {
            let concrete = file.path.replace('*', "x");
            let path = match file.scope {
                Scope::Global => format!("/home/zoe/{concrete}"),
                Scope::Project => format!("/srv/p/{concrete}"),
                Scope::System => format!("/{concrete}"),
            };
            let found = recognise(Path::new(&path)).unwrap_or_else(|| panic!("{path}"));
            assert!(
                found.client.files.iter().any(|f| f.path == file.path),
                "{path}: {} recognised it as {}'s",
                client.id,
                found.client.id
            );
            if file.servers.is_empty() {
                continue;
            }
            let config = ConfigRef { client, ..found };
            let text = config_with(file.format, file.servers, &servers);
            let parsed = parse(&config, text.as_bytes());
            assert_eq!(parsed.parse_error, None, "{} {path}:\n{text}", client.id);
            assert!(
                parsed
                    .servers
                    .iter()
                    .any(|s| s.name == "srv"
                        && class_of(s, "env.OPENAI_API_KEY") == ValueClass::Literal),
                "{} {path}: {:?}\n{text}",
                client.id,
                names(&parsed)
            );
            files += 1;
        }
    }
    assert!(clients().len() >= 46, "{} clients", clients().len());
    assert!(files >= 150, "{files} files");
}

#[test]
fn homes_from_passwd_keeps_real_users() {
    let tmp = tempfile::tempdir().unwrap();
    let alice = tmp.path().join("alice");
    let daemon = tmp.path().join("daemon");
    let runner = tmp.path().join("runner");
    for d in [&alice, &daemon, &runner] {
        fs::create_dir_all(d).unwrap();
    }
    write(&runner.join(".codex/config.toml"), "");
    let passwd = format!(
        "root:x:0:0:root:/:/bin/bash\n\
         daemon:x:1:1:daemon:{}:/usr/sbin/nologin\n\
         runner:x:998:998::{}:/bin/sh\n\
         alice:x:1000:1000:Alice:{}:/bin/bash\n\
         ghost:x:1001:1001::{}/nope:/bin/bash\n\
         # comment\n",
        daemon.display(),
        runner.display(),
        alice.display(),
        tmp.path().display()
    );
    let homes = super::discover::homes_from_passwd(&passwd, 1000);
    let users: Vec<&str> = homes.iter().map(|h| h.user.as_str()).collect();
    assert_eq!(users, vec!["runner", "alice"]);
    assert_eq!(homes[1].uid, 1000);

    if std::env::var_os("HOME").is_some() {
        assert!(!super::homes().is_empty());
    }
}

/// Reference forms: a directory variable with a path after it is a path (no secret field),
/// `headersHelper` is a command run for the headers (a secret manager), and a reference's
/// default is judged on its own.
#[test]
fn reference_forms_paths_helpers_and_defaults() {
    let key = fake_key("sk-live-", "Dfl7");
    let text = json!({"mcpServers": {"a": {
        "command": "npx",
        "env": {
            "GOOGLE_APPLICATION_CREDENTIALS": "${workspaceFolder}/keys/sa.json",
            "SERVICE_ACCOUNT_KEY": "%USERPROFILE%\\keys\\sa.json",
            "OPENAI_API_KEY": format!("${{OPENAI_API_KEY:-{key}}}"),
            "ANTHROPIC_API_KEY": "${ANTHROPIC_API_KEY:-}"
        },
        "headersHelper": "/usr/local/bin/mcp-headers --server a"
    }}})
    .to_string();
    let parsed = parse_at("/home/kim/.claude.json", &text);
    let a = server(&parsed, "a");
    let fields: Vec<&str> = a.fields.iter().map(|f| f.field.as_str()).collect();
    assert!(
        !fields.contains(&"env.GOOGLE_APPLICATION_CREDENTIALS"),
        "{fields:?}"
    );
    assert!(!fields.contains(&"env.SERVICE_ACCOUNT_KEY"), "{fields:?}");
    assert_eq!(class_of(a, "env.OPENAI_API_KEY"), ValueClass::Literal);
    assert_eq!(class_of(a, "env.ANTHROPIC_API_KEY"), ValueClass::EnvRef);
    assert_eq!(class_of(a, "headersHelper"), ValueClass::SecretManager);
}

/// A server whose environment comes from a file (VS Code `envFile`, `env_file`) keeps its keys
/// out of the config: the file is a reference, and the server passes the injection check.
#[test]
fn an_env_file_is_a_reference_to_the_keys_outside_the_config() {
    let text = json!({"servers": {
        "a": {"type": "stdio", "command": "npx", "envFile": "${workspaceFolder}/.env"},
        "b": {"command": "uvx", "env_file": ".env.mcp"}
    }})
    .to_string();
    let parsed = parse_at("/home/kim/work/app/.vscode/mcp.json", &text);
    for (name, field) in [("a", "envFile"), ("b", "env_file")] {
        let server = server(&parsed, name);
        assert_eq!(class_of(server, field), ValueClass::EnvRef, "{name}");
        let check = server.check("env-injection").expect("env-injection check");
        assert!(check.pass, "{name}: {}", check.reason);
    }
}

/// A type no client documents yet, and fields nobody reads, never reject a file or a server.
#[test]
fn unknown_types_and_fields_are_read_not_rejected() {
    let key = fake_key("sk-live-", "Unk9");
    let text = json!({
        "mcpServers": {
            "a": {"type": "websocket-v9", "command": "npx", "transportOptions": {"x": [1, 2]},
                  "env": {"OPENAI_API_KEY": key}, "futureField": true},
            "b": {"type": "streamable-http-2", "url": "https://mcp.b.test/mcp"}
        },
        "someNewTopLevelSetting": {"nested": null}
    })
    .to_string();
    let parsed = parse_at("/home/kim/.cursor/mcp.json", &text);
    assert_eq!(names(&parsed), ["a", "b"]);
    assert_eq!(
        class_of(server(&parsed, "a"), "env.OPENAI_API_KEY"),
        ValueClass::Literal
    );
}

/// The file-level secret field at `path` of a parsed config (outside its servers).
fn config_field<'a>(parsed: &'a ParsedConfig, path: &str) -> &'a SecretField {
    parsed
        .fields
        .iter()
        .find(|f| f.field == path)
        .unwrap_or_else(|| {
            let have: Vec<&str> = parsed.fields.iter().map(|f| f.field.as_str()).collect();
            panic!(
                "no config field {path} in {}: {have:?}",
                parsed.path.display()
            )
        })
}

/// A VS Code multi-root workspace file, whatever its name, keeps servers in its workspace
/// settings (`settings.mcp.servers`); its directory is the project.
#[test]
fn vscode_code_workspace_file_servers() {
    let key = fake_key("sk-", "Wsp4");
    let text = format!(
        r#"{{
  // a multi-root workspace
  "folders": [{{ "path": "api" }}, {{ "path": "web" }}],
  "settings": {{
    "editor.tabSize": 2,
    "mcp": {{
      "servers": {{
        "search": {{ "command": "npx", "args": ["-y", "search-mcp"], "env": {{ "SEARCH_API_KEY": "{key}" }} }},
      }},
    }},
  }},
}}"#
    );
    let path = "/srv/shop/shop.code-workspace";
    let found = recognise(Path::new(path)).unwrap();
    assert_eq!(found.client.id, "vscode");
    assert_eq!(
        found.scope,
        ConfigScope::Project(PathBuf::from("/srv/shop"))
    );
    let parsed = parse_at(path, &text);
    let search = server(&parsed, "search");
    assert_eq!(search.project.as_deref(), Some("/srv/shop"));
    let f = field(search, "env.SEARCH_API_KEY");
    assert_eq!(
        (f.class, f.value.as_str()),
        (ValueClass::Literal, key.as_str())
    );
    // Only names ending in `.code-workspace`.
    assert_eq!(recognise(Path::new("/srv/shop/code-workspace.json")), None);

    // Discovery finds it in a known project.
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("team.code-workspace"), &text);
    let configs = project_configs(tmp.path());
    assert!(
        configs
            .iter()
            .any(|c| c.client.id == "vscode" && c.path.ends_with("team.code-workspace")),
        "{configs:?}"
    );
}

/// `$CLAUDE_CONFIG_DIR` moves Claude Code's `~/.claude` (settings, subagents) for the user
/// whose process sets it, as `$CODEX_HOME` moves `~/.codex`.
#[test]
fn env_dir_relocations_follow_the_users_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let home_dir = tmp.path().join("home/ola");
    let claude_dir = tmp.path().join("profiles/work-claude");
    let codex_dir = tmp.path().join("profiles/codex");
    write(&claude_dir.join("settings.json"), r#"{"env": {}}"#);
    write(
        &claude_dir.join("agents/reviewer.md"),
        "---\nname: reviewer\n---\n",
    );
    write(&codex_dir.join("config.toml"), "");
    let home = Home {
        user: "ola".into(),
        uid: 1000,
        dir: home_dir.clone(),
    };
    let env = |var: &str| -> Option<std::ffi::OsString> {
        match var {
            "HOME" => Some(home_dir.clone().into_os_string()),
            "CLAUDE_CONFIG_DIR" => Some(claude_dir.clone().into_os_string()),
            "CODEX_HOME" => Some(codex_dir.clone().into_os_string()),
            _ => None,
        }
    };
    let found = Discovery::global_in(&home, &env);
    let has = |path: PathBuf, client: &str| {
        assert!(
            found.configs.iter().any(|c| c.path == path
                && c.client.id == client
                && c.scope == ConfigScope::User("ola".into())),
            "{} ({client}) missing from {:#?}",
            path.display(),
            found.configs
        );
    };
    has(claude_dir.join("settings.json"), "claude-code");
    has(claude_dir.join("agents/reviewer.md"), "claude-code");
    has(codex_dir.join("config.toml"), "codex");

    // Another user's home: the variables are this process's, not theirs.
    let other = Home {
        user: "pat".into(),
        uid: 1001,
        dir: tmp.path().join("home/pat"),
    };
    assert!(Discovery::global_in(&other, &env).configs.is_empty());
}

/// A redirected `%APPDATA%` or `%LOCALAPPDATA%` (a roaming profile on a server, another
/// drive) holds the user's Windows client configs instead of the profile's `AppData`.
#[test]
fn redirected_windows_folders_follow_the_users_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let home_dir = tmp.path().join("Users/ola");
    let roaming = tmp.path().join("profiles/ola/Roaming");
    write(
        &roaming.join("Claude/claude_desktop_config.json"),
        r#"{"mcpServers": {}}"#,
    );
    write(
        &home_dir.join("AppData/Roaming/Code/User/mcp.json"),
        r#"{"servers": {}}"#,
    );
    let home = Home {
        user: "ola".into(),
        uid: 0,
        dir: home_dir.clone(),
    };
    let env = |var: &str| -> Option<std::ffi::OsString> {
        match var {
            v if v == crate::platform::HOME_VAR => Some(home_dir.clone().into_os_string()),
            "APPDATA" => Some(roaming.clone().into_os_string()),
            _ => None,
        }
    };
    let found = Discovery::global_in(&home, &env);
    let has = |path: PathBuf, client: &str| {
        assert!(
            found
                .configs
                .iter()
                .any(|c| c.path == path && c.client.id == client),
            "{} ({client}) missing from {:#?}",
            path.display(),
            found.configs
        );
    };
    has(
        roaming.join("Claude/claude_desktop_config.json"),
        "claude-desktop",
    );
    // What the profile itself holds is still found.
    has(
        home_dir.join("AppData/Roaming/Code/User/mcp.json"),
        "vscode",
    );

    // Another user's home: the variable is this process's, not theirs.
    let other = Home {
        user: "pat".into(),
        uid: 0,
        dir: tmp.path().join("Users/pat"),
    };
    assert!(Discovery::global_in(&other, &env).configs.is_empty());
}

/// Claude Code's settings `env` applies variables to every session: a key there is a leak.
#[test]
fn claude_code_settings_env_is_a_secret_field() {
    let key = fake_key("sk-ant-api03-", "Cse2");
    let text = json!({"env": {"ANTHROPIC_API_KEY": key, "BASH_DEFAULT_TIMEOUT_MS": "60000"},
                      "permissions": {"allow": ["Read(**)"]}})
    .to_string();
    for path in [
        "/home/ola/.claude/settings.json",
        "/srv/app/.claude/settings.json",
        "/srv/app/.claude/settings.local.json",
    ] {
        let parsed = parse_at(path, &text);
        assert_eq!(parsed.client, "claude-code", "{path}");
        let f = config_field(&parsed, "env.ANTHROPIC_API_KEY");
        assert_eq!(
            (f.class, f.value.as_str()),
            (ValueClass::Literal, key.as_str())
        );
        assert!(parsed.servers.is_empty());
    }
}

/// Codex model providers may carry a bearer token or static headers inline.
#[test]
fn codex_model_provider_secrets() {
    let token = fake_key("", "Cmp6");
    let header = fake_key("", "Hdr3");
    let text = format!(
        r#"model_provider = "proxy"

[model_providers.proxy]
name = "Proxy"
base_url = "https://llm.example.com/v1"
experimental_bearer_token = "{token}"
http_headers = {{ "X-Api-Key" = "{header}" }}
env_http_headers = {{ "X-Org" = "PROXY_ORG" }}
"#
    );
    for path in [
        "/home/fay/.codex/config.toml",
        "/home/fay/.codex/work.config.toml",
    ] {
        let parsed = parse_at(path, &text);
        assert_eq!(parsed.client, "codex");
        let f = config_field(&parsed, "model_providers.proxy.experimental_bearer_token");
        assert_eq!(
            (f.class, f.value.as_str()),
            (ValueClass::Literal, token.as_str())
        );
        let f = config_field(&parsed, "model_providers.proxy.http_headers.X-Api-Key");
        assert_eq!(
            (f.class, f.value.as_str()),
            (ValueClass::Literal, header.as_str())
        );
        // `env_http_headers` names variables: not a secret field.
        assert!(parsed
            .fields
            .iter()
            .all(|f| !f.field.contains("env_http_headers")));
    }
}

/// Kimi Code CLI keeps provider and service API keys inline in `~/.kimi/config.toml`.
#[test]
fn kimi_config_provider_and_service_keys() {
    let provider = fake_key("sk-", "Kmi5");
    let search = fake_key("sk-", "Srh8");
    let text = format!(
        r#"default_model = "kimi-for-coding"

[providers.kimi-for-coding]
type = "kimi"
base_url = "https://api.kimi.com/coding/v1"
api_key = "{provider}"

[services.moonshot_search]
base_url = "https://api.kimi.com/coding/v1/search"
api_key = "{search}"
"#
    );
    let parsed = parse_at("/home/lee/.kimi/config.toml", &text);
    assert_eq!(parsed.client, "kimi-cli");
    let f = config_field(&parsed, "providers.kimi-for-coding.api_key");
    assert_eq!(
        (f.class, f.value.as_str()),
        (ValueClass::Literal, provider.as_str())
    );
    let f = config_field(&parsed, "services.moonshot_search.api_key");
    assert_eq!(
        (f.class, f.value.as_str()),
        (ValueClass::Literal, search.as_str())
    );
}

/// Goose: a key in `envs` beside the same name in `env_keys` (keyring-backed) is still a
/// literal in the file, and the server fails the secret-manager check.
#[test]
fn goose_literal_beside_env_keys_is_a_literal() {
    let key = fake_key("ghp_", "Gky4");
    let text = format!(
        "extensions:\n  github:\n    type: stdio\n    cmd: npx\n    envs:\n      GITHUB_PERSONAL_ACCESS_TOKEN: {key}\n    env_keys:\n      - GITHUB_PERSONAL_ACCESS_TOKEN\n"
    );
    let parsed = parse_at("/home/gus/.config/goose/config.yaml", &text);
    let gh = server(&parsed, "github");
    let f = field(gh, "envs.GITHUB_PERSONAL_ACCESS_TOKEN");
    assert_eq!(
        (f.class, f.value.as_str()),
        (ValueClass::Literal, key.as_str())
    );
    assert_eq!(class_of(gh, "env_keys[0]"), ValueClass::SecretManager);
    assert!(!passes(gh, "secret-manager"));
    assert!(!passes(gh, "env-injection"));
}
