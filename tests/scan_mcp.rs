//! `detector scan` over a home directory holding the MCP configs of many clients, each in its
//! real location and format, driven through the real binary.
use std::{
    collections::BTreeSet,
    ffi::CString,
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use kit::{
    keys::{fingerprint, key, random, ALNUM, DIGITS, HEX},
    report::{assert_no_secret, report_fingerprints},
    run::{json, stderr, stdout},
    write,
};
use serde_json::{json, Value};

use crate::detector;

const ORG_KEY: &str = "scan-mcp-test-org";

/// A literal key written into one server field of one config.
struct Plant {
    secret: String,
    client: &'static str,
    server: &'static str,
    field: &'static str,
    config: PathBuf,
}

/// A reference or placeholder written into one server field: never a key.
struct NotAKey {
    client: &'static str,
    server: &'static str,
    field: &'static str,
    class: &'static str,
}

struct Fixture {
    _tmp: tempfile::TempDir,
    /// `…/home/alice`
    home: PathBuf,
    /// `…/home/alice/work/payments-prod`, a project with its own configs.
    prod: PathBuf,
    /// `…/home/alice/work/webapp-dev`, a project configured in `~/.claude.json`.
    dev: PathBuf,
    plants: Vec<Plant>,
    not_keys: Vec<NotAKey>,
    broken: PathBuf,
    /// A literal key in the broken config: found by scanning its text, with no server.
    broken_secret: String,
    fifo: PathBuf,
    dangling: PathBuf,
}

impl Fixture {
    fn secrets(&self) -> BTreeSet<String> {
        self.plants
            .iter()
            .map(|p| p.secret.clone())
            .chain([self.broken_secret.clone()])
            .collect()
    }

    fn fingerprints(&self) -> BTreeSet<String> {
        self.secrets()
            .iter()
            .map(|s| fingerprint(ORG_KEY.as_bytes(), s))
            .collect()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.home.join(rel)
    }

    fn scan(&self, target: &str, extra: &[&str]) -> std::process::Output {
        let mut args = vec!["scan", target];
        args.extend_from_slice(extra);
        detector(&args, &self.home, Some(ORG_KEY))
    }
}

fn write_json(path: &Path, value: &Value) {
    write(path, &serde_json::to_string_pretty(value).unwrap());
}

/// The home of user `alice`, with configs of seventeen clients.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home/alice");
    let prod = home.join("work/payments-prod");
    let dev = home.join("work/webapp-dev");
    fs::create_dir_all(&prod).unwrap();
    fs::create_dir_all(&dev).unwrap();

    let github = key("ghp_", ALNUM, 36, 1);
    let openai = key("sk-proj-", ALNUM, 48, 2);
    let anthropic = [&key("sk-ant-api03-", ALNUM, 93, 3), "AA"].concat();
    let slack = [
        "xoxb-",
        &random(DIGITS, 12, 4),
        "-",
        &random(DIGITS, 13, 5),
        "-",
        &random(ALNUM, 24, 6),
    ]
    .concat();
    let stripe_live = key("sk_live_", ALNUM, 32, 7);
    let stripe_test = key("sk_test_", ALNUM, 32, 8);
    let scavio = key("sc-live-", HEX, 32, 9);
    let huggingface = key("hf_", ALNUM, 34, 10);
    let perplexity = key("pplx-", ALNUM, 48, 11);
    let exa = [
        &random(HEX, 8, 12),
        "-",
        &random(HEX, 4, 13),
        "-",
        &random(HEX, 4, 14),
        "-",
        &random(HEX, 4, 15),
        "-",
        &random(HEX, 12, 16),
    ]
    .concat();
    let neon = key("napi_", ALNUM, 64, 17);
    let linear = key("lin_api_", ALNUM, 40, 18);
    let brave = key("BSA", ALNUM, 28, 19);
    let remote_token = key("rt", ALNUM, 40, 20);
    let tavily = key("tvly-", ALNUM, 32, 21);
    let gitlab = key("glpat-", ALNUM, 20, 22);
    let context7 = key("ctx7sk-", HEX, 32, 23);
    let groq = key("gsk_", ALNUM, 52, 24);
    let notion = key("ntn_", ALNUM, 46, 25);
    let firecrawl = key("fc-", HEX, 32, 26);
    let openrouter = key("sk-or-v1-", HEX, 64, 27);

    let mut plants = Vec::new();
    let mut not_keys = Vec::new();
    let mut plant = |secret: &String, client, server, field, config: &Path| {
        plants.push(Plant {
            secret: secret.clone(),
            client,
            server,
            field,
            config: config.to_path_buf(),
        })
    };
    let mut not_key = |client, server, field, class| {
        not_keys.push(NotAKey {
            client,
            server,
            field,
            class,
        })
    };

    // Claude Desktop
    let path = home.join(".config/Claude/claude_desktop_config.json");
    write_json(
        &path,
        &json!({"mcpServers": {
            "github": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
                       "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": github}},
            "github-ref": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
                           "env": {"GITHUB_TOKEN": "${GITHUB_TOKEN}"}}
        }}),
    );
    plant(
        &github,
        "claude-desktop",
        "github",
        "env.GITHUB_PERSONAL_ACCESS_TOKEN",
        &path,
    );
    not_key(
        "claude-desktop",
        "github-ref",
        "env.GITHUB_TOKEN",
        "env-ref",
    );

    // Claude Code: user servers, per-project servers, and a project's .mcp.json
    let path = home.join(".claude.json");
    let mut projects = serde_json::Map::new();
    projects.insert(
        prod.display().to_string(),
        json!({"allowedTools": [], "mcpServers": {}}),
    );
    projects.insert(
        dev.display().to_string(),
        json!({"allowedTools": [], "mcpServers": {
            "stripe": {"command": "npx", "args": ["-y", "@stripe/mcp", "--tools=all"],
                       "env": {"STRIPE_SECRET_KEY": stripe_test}},
            "github": {"command": "docker",
                       "args": ["run", "-i", "--rm", "-e", "GITHUB_PERSONAL_ACCESS_TOKEN", "ghcr.io/github/github-mcp-server"],
                       "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": github}}
        }}),
    );
    write_json(
        &path,
        &json!({
            "numStartups": 12,
            "mcpServers": {"openai": {"type": "stdio", "command": "npx", "args": ["-y", "openai-mcp"],
                                      "env": {"OPENAI_API_KEY": openai}}},
            "projects": projects,
        }),
    );
    plant(
        &openai,
        "claude-code",
        "openai",
        "env.OPENAI_API_KEY",
        &path,
    );
    plant(
        &stripe_test,
        "claude-code",
        "stripe",
        "env.STRIPE_SECRET_KEY",
        &path,
    );
    plant(
        &github,
        "claude-code",
        "github",
        "env.GITHUB_PERSONAL_ACCESS_TOKEN",
        &path,
    );

    let path = prod.join(".mcp.json");
    write_json(
        &path,
        &json!({"mcpServers": {
            "stripe": {"command": "npx", "args": ["-y", "@stripe/mcp"],
                       "env": {"STRIPE_SECRET_KEY": stripe_live}},
            "stripe-ci": {"command": "npx", "args": ["-y", "@stripe/mcp"],
                          "env": {"STRIPE_API_KEY": "${{ secrets.STRIPE_KEY }}"}}
        }}),
    );
    plant(
        &stripe_live,
        "claude-code",
        "stripe",
        "env.STRIPE_SECRET_KEY",
        &path,
    );
    not_key("claude-code", "stripe-ci", "env.STRIPE_API_KEY", "env-ref");

    // Cursor: global and project
    let path = home.join(".cursor/mcp.json");
    write_json(
        &path,
        &json!({"mcpServers": {
            "anthropic": {"command": "npx", "args": ["-y", "anthropic-mcp"],
                          "env": {"ANTHROPIC_API_KEY": anthropic}},
            "openai-ref": {"command": "npx", "args": ["-y", "openai-mcp"],
                           "env": {"OPENAI_API_KEY": "${env:OPENAI_API_KEY}"}}
        }}),
    );
    plant(
        &anthropic,
        "cursor",
        "anthropic",
        "env.ANTHROPIC_API_KEY",
        &path,
    );
    not_key("cursor", "openai-ref", "env.OPENAI_API_KEY", "env-ref");

    let path = prod.join(".cursor/mcp.json");
    write_json(
        &path,
        &json!({"mcpServers": {"scavio": {"command": "npx", "args": ["-y", "scavio-mcp"],
                                          "env": {"SCAVIO_API_KEY": scavio}}}}),
    );
    plant(&scavio, "cursor", "scavio", "env.SCAVIO_API_KEY", &path);

    // VS Code: a project config with an input prompt, and a user config without secrets
    let path = prod.join(".vscode/mcp.json");
    write(
        &path,
        &format!(
            r#"{{
  // Inputs are prompted for when the server starts.
  "inputs": [
    {{ "type": "promptString", "id": "github-token", "description": "GitHub token", "password": true }}
  ],
  "servers": {{
    "github-remote": {{
      "type": "http",
      "url": "https://api.githubcopilot.com/mcp/",
      "headers": {{ "Authorization": "Bearer ${{input:github-token}}" }}
    }},
    "huggingface": {{
      "command": "uvx",
      "args": ["hf-mcp"],
      "env": {{ "HF_TOKEN": "{huggingface}" }},
    }},
  }}
}}
"#
        ),
    );
    plant(&huggingface, "vscode", "huggingface", "env.HF_TOKEN", &path);
    not_key(
        "vscode",
        "github-remote",
        "headers.Authorization",
        "input-prompt",
    );
    write_json(
        &home.join(".config/Code/User/mcp.json"),
        &json!({"servers": {"memory": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"]}}}),
    );

    // Windsurf
    let path = home.join(".codeium/windsurf/mcp_config.json");
    write_json(
        &path,
        &json!({"mcpServers": {
            "slack": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-slack"],
                      "env": {"SLACK_BOT_TOKEN": slack, "SLACK_TEAM_ID": "T01234567"}},
            "slack-ref": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-slack"],
                          "env": {"SLACK_BOT_TOKEN": "$SLACK_TOKEN"}}
        }}),
    );
    plant(&slack, "windsurf", "slack", "env.SLACK_BOT_TOKEN", &path);
    not_key("windsurf", "slack-ref", "env.SLACK_BOT_TOKEN", "env-ref");

    // Cline (a VS Code extension's global storage)
    let path = home.join(
        ".config/Code/User/globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json",
    );
    write_json(
        &path,
        &json!({"mcpServers": {
            "perplexity": {"command": "npx", "args": ["-y", "perplexity-mcp"],
                           "env": {"PERPLEXITY_API_KEY": perplexity}, "disabled": false, "autoApprove": []},
            "filler": {"command": "npx", "args": ["-y", "openai-mcp"],
                       "env": {"OPENAI_API_KEY": "xxxxxxxxxxxxxxxx"}}
        }}),
    );
    plant(
        &perplexity,
        "cline",
        "perplexity",
        "env.PERPLEXITY_API_KEY",
        &path,
    );
    not_key("cline", "filler", "env.OPENAI_API_KEY", "placeholder");

    // Continue (YAML, servers in a list)
    let path = home.join(".continue/config.yaml");
    write(
        &path,
        &format!(
            "name: Local Assistant\nversion: 1.0.0\nschema: v1\nmcpServers:\n  - name: exa\n    command: npx\n    args:\n      - -y\n      - exa-mcp-server\n    env:\n      EXA_API_KEY: \"{exa}\"\n"
        ),
    );
    plant(&exa, "continue", "exa", "env.EXA_API_KEY", &path);

    // Zed (JSONC: comments and trailing commas)
    let path = home.join(".config/zed/settings.json");
    write(
        &path,
        &format!(
            r#"// Zed settings
{{
  "theme": "One Dark",
  /* MCP context servers */
  "context_servers": {{
    "neon-staging": {{
      "source": "custom",
      "command": "npx",
      "args": ["-y", "@neondatabase/mcp-server-neon", "start"],
      "env": {{ "NEON_API_KEY": "{neon}" }}, // the key
    }},
  }},
}}
"#
        ),
    );
    plant(&neon, "zed", "neon-staging", "env.NEON_API_KEY", &path);

    // Gemini CLI
    let path = home.join(".gemini/settings.json");
    write_json(
        &path,
        &json!({"mcpServers": {
            "scavio": {"command": "npx", "args": ["-y", "scavio-mcp"], "env": {"SCAVIO_API_KEY": scavio}},
            "docs": {"httpUrl": "https://docs.example.com/mcp", "headers": {"X-API-Key": "your-api-key-here"}}
        }}),
    );
    plant(&scavio, "gemini-cli", "scavio", "env.SCAVIO_API_KEY", &path);
    not_key("gemini-cli", "docs", "headers.X-API-Key", "placeholder");

    // Codex (TOML)
    let path = home.join(".codex/config.toml");
    write(
        &path,
        &format!(
            r#"model = "o3"

[mcp_servers.linear]
command = "npx"
args = ["-y", "linear-mcp"]
env = {{ LINEAR_API_KEY = "{linear}" }}

[mcp_servers.vault]
command = "npx"
args = ["-y", "linear-mcp"]
env = {{ LINEAR_API_KEY = "$(aws secretsmanager get-secret-value --secret-id linear --query SecretString --output text)" }}
"#
        ),
    );
    plant(&linear, "codex", "linear", "env.LINEAR_API_KEY", &path);
    not_key("codex", "vault", "env.LINEAR_API_KEY", "secret-manager");

    // Goose (YAML extensions)
    let path = home.join(".config/goose/config.yaml");
    write(
        &path,
        &format!(
            "GOOSE_PROVIDER: openai\nextensions:\n  brave:\n    name: brave\n    cmd: npx\n    args: [-y, \"@modelcontextprotocol/server-brave-search\"]\n    enabled: true\n    envs:\n      BRAVE_API_KEY: {brave}\n    type: stdio\n    timeout: 300\n  notion:\n    name: notion\n    cmd: npx\n    args: [-y, notion-mcp]\n    enabled: true\n    envs:\n      NOTION_TOKEN: \"op://Private/Notion/credential\"\n    type: stdio\n  developer:\n    name: developer\n    enabled: true\n    type: builtin\n"
        ),
    );
    plant(&brave, "goose", "brave", "envs.BRAVE_API_KEY", &path);
    not_key("goose", "notion", "envs.NOTION_TOKEN", "secret-manager");

    // opencode
    let path = home.join(".config/opencode/opencode.json");
    write_json(
        &path,
        &json!({"$schema": "https://opencode.ai/config.json", "mcp": {
            "remote": {"type": "remote", "url": "https://mcp.example.com/mcp",
                       "headers": {"Authorization": format!("Bearer {remote_token}")}, "enabled": true},
            "local-ref": {"type": "local", "command": ["npx", "-y", "some-mcp"],
                          "environment": {"API_TOKEN": "{env:SENTRY_TOKEN}"}}
        }}),
    );
    plant(
        &remote_token,
        "opencode",
        "remote",
        "headers.Authorization",
        &path,
    );
    not_key("opencode", "local-ref", "environment.API_TOKEN", "env-ref");

    // Kiro (key in a URL query)
    let path = home.join(".kiro/settings/mcp.json");
    write_json(
        &path,
        &json!({"mcpServers": {
            "tavily": {"url": format!("https://mcp.tavily.com/mcp/?tavilyApiKey={tavily}")},
            "todo": {"command": "npx", "args": ["-y", "github-mcp"], "env": {"GITHUB_TOKEN": "<YOUR_TOKEN>"}}
        }}),
    );
    plant(&tavily, "kiro", "tavily", "url?tavilyApiKey", &path);
    not_key("kiro", "todo", "env.GITHUB_TOKEN", "placeholder");

    // Amazon Q (key in an argument)
    let path = home.join(".aws/amazonq/mcp.json");
    write_json(
        &path,
        &json!({"mcpServers": {
            "gitlab": {"command": "npx", "args": ["-y", "@zereight/mcp-gitlab", "--token", gitlab],
                       "env": {"OPENAI_API_KEY": "sk-..."}}
        }}),
    );
    plant(&gitlab, "amazon-q", "gitlab", "args[3]", &path);
    not_key("amazon-q", "gitlab", "env.OPENAI_API_KEY", "placeholder");

    // GitHub Copilot CLI (key in a header)
    let path = home.join(".copilot/mcp-config.json");
    write_json(
        &path,
        &json!({"mcpServers": {
            "context7": {"type": "http", "url": "https://mcp.context7.com/mcp",
                         "headers": {"CONTEXT7_API_KEY": context7}, "tools": ["*"]}
        }}),
    );
    plant(
        &context7,
        "copilot-cli",
        "context7",
        "headers.CONTEXT7_API_KEY",
        &path,
    );

    // Roo Code (a VS Code extension's global storage): a literal key, a secret-manager call
    // inside a `bash -c` wrapper, and an empty value.
    let path = home.join(
        ".config/Code/User/globalStorage/rooveterinaryinc.roo-cline/settings/mcp_settings.json",
    );
    write_json(
        &path,
        &json!({"mcpServers": {
            "notion": {"command": "npx", "args": ["-y", "@notionhq/notion-mcp-server"],
                       "env": {"NOTION_TOKEN": notion}, "alwaysAllow": []},
            "github-vault": {"command": "bash", "args": ["-c",
                "GITHUB_TOKEN=$(vault kv get -field=token secret/github) npx -y @modelcontextprotocol/server-github"]},
            "sentry-vault": {"command": "bash -c \"SENTRY_AUTH_TOKEN=$(vault kv get -field=token secret/sentry) npx -y @sentry/mcp-server\""},
            "search-empty": {"command": "npx", "args": ["-y", "brave-search-mcp"],
                             "env": {"BRAVE_API_KEY": ""}}
        }}),
    );
    plant(&notion, "roo-code", "notion", "env.NOTION_TOKEN", &path);
    not_key(
        "roo-code",
        "github-vault",
        "command:GITHUB_TOKEN",
        "secret-manager",
    );
    not_key(
        "roo-code",
        "sentry-vault",
        "command:SENTRY_AUTH_TOKEN",
        "secret-manager",
    );
    not_key("roo-code", "search-empty", "env.BRAVE_API_KEY", "empty");

    // JetBrains Junie: literal keys in env and in a header, a gcloud secret, `changeme`.
    let path = home.join(".junie/mcp/mcp.json");
    write_json(
        &path,
        &json!({"mcpServers": {
            "firecrawl": {"command": "npx", "args": ["-y", "firecrawl-mcp"],
                          "env": {"FIRECRAWL_API_KEY": firecrawl}},
            "openrouter": {"url": "https://openrouter.example.com/mcp",
                           "headers": {"Authorization": format!("Bearer {openrouter}")}},
            "brave-gcloud": {"command": "npx", "args": ["-y", "brave-search-mcp"],
                             "env": {"BRAVE_API_KEY": "$(gcloud secrets versions access latest --secret=brave-api-key)"}},
            "postgres": {"command": "npx", "args": ["-y", "postgres-mcp"],
                         "env": {"DB_PASSWORD": "changeme"}}
        }}),
    );
    plant(
        &firecrawl,
        "junie",
        "firecrawl",
        "env.FIRECRAWL_API_KEY",
        &path,
    );
    plant(
        &openrouter,
        "junie",
        "openrouter",
        "headers.Authorization",
        &path,
    );
    not_key(
        "junie",
        "brave-gcloud",
        "env.BRAVE_API_KEY",
        "secret-manager",
    );
    not_key("junie", "postgres", "env.DB_PASSWORD", "placeholder");

    // LM Studio: a config cut off in the middle, a literal key in what was written.
    let broken = home.join(".lmstudio/mcp.json");
    write(
        &broken,
        &format!(
            "{{\n  \"mcpServers\": {{\n    \"groq\": {{\n      \"command\": \"npx\",\n      \"env\": {{\"GROQ_API_KEY\": \"{groq}\",\n        \"API_KEY\": "
        ),
    );

    // An ordinary file: only a walk reads it.
    write(
        &dev.join(".env"),
        &format!("NODE_ENV=development\nGITHUB_TOKEN={github}\n"),
    );

    // Things a walk must not open or must not choke on.
    let fifo = home.join("work/events.pipe");
    let c = CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
    let dangling = home.join(".config/old-link.json");
    std::os::unix::fs::symlink(home.join("gone.json"), &dangling).unwrap();

    Fixture {
        _tmp: tmp,
        home,
        prod,
        dev,
        plants,
        not_keys,
        broken,
        broken_secret: groq,
        fifo,
        dangling,
    }
}

fn keys(report: &Value) -> &Vec<Value> {
    report["keys"].as_array().expect("keys[]")
}

fn key_with<'r>(report: &'r Value, fingerprint: &str) -> Option<&'r Value> {
    keys(report)
        .iter()
        .find(|k| k["fingerprint"].as_str() == Some(fingerprint))
}

fn server<'r>(report: &'r Value, client: &str, name: &str) -> &'r Value {
    report["mcp_servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["client"] == client && s["server"] == name)
        .unwrap_or_else(|| panic!("server {client}/{name} in mcp_servers[]"))
}

/// Every planted key is a key, with its client, server, field and config in scope; nothing
/// else is.
fn assert_every_plant_found(report: &Value, fixture: &Fixture) {
    let expected = fixture.fingerprints();
    let found = report_fingerprints(report);
    let unexpected: Vec<&Value> = keys(report)
        .iter()
        .filter(|k| !expected.contains(k["fingerprint"].as_str().unwrap()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "keys that were never planted: {}",
        serde_json::to_string_pretty(&unexpected).unwrap()
    );
    for plant in &fixture.plants {
        let fp = fingerprint(ORG_KEY.as_bytes(), &plant.secret);
        let key = key_with(report, &fp).unwrap_or_else(|| {
            panic!(
                "the key in {} `{}` {} was not reported",
                plant.client, plant.server, plant.field
            )
        });
        let servers = key["scope"]["mcp_servers"].as_array().unwrap();
        assert!(
            servers.iter().any(|s| s["client"] == plant.client
                && s["server"] == plant.server
                && s["field"] == plant.field
                && s["config"] == plant.config.display().to_string()),
            "{} `{}` {} is not in the key's scope: {}",
            plant.client,
            plant.server,
            plant.field,
            serde_json::to_string_pretty(servers).unwrap()
        );
        assert!(
            key["locations"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["path"] == plant.config.display().to_string()
                    && l["kind"] == "mcp-config"),
            "no mcp-config location in {} for {}",
            plant.config.display(),
            plant.field
        );
    }
    // The key in the config that does not parse: found in its text, at its line.
    let fp = fingerprint(ORG_KEY.as_bytes(), &fixture.broken_secret);
    let key = key_with(report, &fp).expect("the key in the unparsed config was not reported");
    assert_eq!(key["rule"], "groq-api-key");
    let broken = fixture.broken.display().to_string();
    assert!(
        key["locations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["path"] == broken
                && l["line"] == 5
                && l["kind"] == "mcp-config"
                && l["mcp_client"] == "lm-studio"),
        "no location in {broken}: {}",
        key["locations"]
    );
    assert_eq!(found, expected);
}

#[test]
fn mcp_target_finds_every_literal_key_and_nothing_else() {
    let fixture = fixture();
    let target = format!("mcp:{}", fixture.home.display());
    let output = fixture.scan(&target, &["--format", "json"]);
    assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["schema"], "detector/report/v1");
    assert_every_plant_found(&report, &fixture);

    // Every key: redacted, no secret, live, with its scope and violations.
    for key in keys(&report) {
        assert!(key.get("secret").is_none());
        assert!(key["redacted"].as_str().unwrap().contains('…'));
        assert_eq!(key["status"], "live");
        assert!(key["violations"]
            .as_array()
            .unwrap()
            .contains(&json!("plaintext-in-mcp-config")));
        assert!(!key["remediation"].as_array().unwrap().is_empty());
        assert!(!key["scope"]["projects"].as_array().unwrap().is_empty());
    }

    // References and placeholders: classified on their server, never keys.
    for nk in &fixture.not_keys {
        let server = server(&report, nk.client, nk.server);
        let field = server["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["field"] == nk.field)
            .unwrap_or_else(|| panic!("{} `{}` has no field {}", nk.client, nk.server, nk.field));
        assert_eq!(
            field["class"], nk.class,
            "{} `{}` {}",
            nk.client, nk.server, nk.field
        );
        assert!(field.get("fingerprint").is_none());
        assert!(field.get("value").is_none());
    }
    // Every planted field is `literal` and points at its key.
    for plant in &fixture.plants {
        let server = report["mcp_servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| {
                s["client"] == plant.client
                    && s["server"] == plant.server
                    && s["config"] == plant.config.display().to_string()
            })
            .unwrap();
        let field = server["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["field"] == plant.field)
            .unwrap();
        assert_eq!(field["class"], "literal");
        assert_eq!(
            field["fingerprint"],
            fingerprint(ORG_KEY.as_bytes(), &plant.secret)
        );
    }
    // A server without secrets is listed too; a Goose built-in is not a server.
    server(&report, "vscode", "memory");
    assert!(!report["mcp_servers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["server"] == "developer"));

    // The broken config is listed as unparsed; the target read every config.
    let target = &report["targets"][0];
    assert_eq!(target["kind"], "mcp");
    assert_eq!(target["failed"], false);
    let unparsed = target["unparsed_configs"].as_array().unwrap();
    assert_eq!(unparsed.len(), 1, "{unparsed:?}");
    assert_eq!(unparsed[0]["path"], fixture.broken.display().to_string());
    assert_eq!(unparsed[0]["client"], "lm-studio");
    assert!(target["objects_scanned"].as_u64().unwrap() >= 17);
    assert_eq!(report["summary"]["keys"], fixture.secrets().len());

    assert_no_secret(&stdout(&output), fixture.secrets(), "the JSON report");
    assert_no_secret(&stderr(&output), fixture.secrets(), "standard error");
}

#[test]
fn scope_environments_and_violations() {
    let fixture = fixture();
    let target = format!("mcp:{}", fixture.home.display());
    let report = json(&fixture.scan(&target, &["--format", "json"]));
    let find = |needle: &str| {
        let plant = fixture
            .plants
            .iter()
            .find(|p| p.secret.starts_with(needle))
            .unwrap();
        key_with(&report, &fingerprint(ORG_KEY.as_bytes(), &plant.secret))
            .unwrap()
            .clone()
    };
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };

    // sk_live_ in the payments-prod project: production, scoped to that project.
    let live = find("sk_live_");
    assert_eq!(strings(&live["scope"]["environments"]), ["production"]);
    assert_eq!(
        strings(&live["scope"]["projects"]),
        [fixture.prod.display().to_string()]
    );
    // sk_test_ in the webapp-dev project of ~/.claude.json.
    let test = find("sk_test_");
    let envs = strings(&test["scope"]["environments"]);
    assert!(envs.contains(&"test".to_string()), "{envs:?}");
    assert!(!envs.contains(&"production".to_string()));
    assert_eq!(
        strings(&test["scope"]["projects"]),
        [fixture.dev.display().to_string()]
    );
    // The same GitHub token for the user and for a project: shared.
    let github = find("ghp_");
    assert_eq!(
        strings(&github["scope"]["projects"]),
        [fixture.dev.display().to_string(), "user:alice".to_string()]
    );
    assert!(strings(&github["violations"]).contains(&"shared-across-projects".to_string()));
    assert_eq!(github["scope"]["mcp_servers"].as_array().unwrap().len(), 2);
    // The context-only key: found, production by its prefix, shared between Gemini (user)
    // and Cursor (the prod project).
    let scavio = find("sc-live-");
    assert_eq!(scavio["redacted"].as_str().unwrap().get(..4), Some("sc-l"));
    assert!(strings(&scavio["scope"]["environments"]).contains(&"production".to_string()));
    assert!(strings(&scavio["violations"]).contains(&"shared-across-projects".to_string()));
    assert_eq!(scavio["slots"], json!(["SCAVIO_API_KEY"]));
    // A client's own path names nothing (Cline lives under `saoudrizwan.claude-dev`).
    assert_eq!(
        strings(&find("pplx-")["scope"]["environments"]),
        ["unknown"]
    );
    // The staging server name names the environment.
    let neon = find("napi_");
    assert_eq!(strings(&neon["scope"]["environments"]), ["staging"]);
    // Files written with the default umask are world-readable.
    assert!(strings(&neon["violations"]).contains(&"world-readable".to_string()));
}

#[test]
fn private_files_are_not_world_readable() {
    let fixture = fixture();
    let config = fixture.path(".config/zed/settings.json");
    fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();
    let output = fixture.scan(&format!("file:{}", config.display()), &["--format", "json"]);
    let report = json(&output);
    assert_eq!(keys(&report).len(), 1);
    let violations = keys(&report)[0]["violations"].as_array().unwrap();
    assert!(
        !violations.contains(&json!("world-readable")),
        "{violations:?}"
    );
    assert_eq!(keys(&report)[0]["locations"][0]["mode"], "0600");
}

#[test]
fn text_report_hides_secrets_and_show_secrets_reveals_them() {
    let fixture = fixture();
    let target = format!("mcp:{}", fixture.home.display());

    let text = fixture.scan(&target, &["--format", "text"]);
    assert_eq!(text.status.code(), Some(1));
    let out = stdout(&text);
    assert_no_secret(&out, fixture.secrets(), "the text report");
    assert!(out.contains("plaintext-in-mcp-config"));
    assert!(out.contains("SCAVIO_API_KEY"));
    assert!(!out.contains('\u{1b}'), "no colour codes in a pipe");

    let shown = fixture.scan(&target, &["--format", "json", "--show-secrets"]);
    let report = json(&shown);
    for secret in fixture.secrets() {
        let fp = fingerprint(ORG_KEY.as_bytes(), &secret);
        assert_eq!(key_with(&report, &fp).unwrap()["secret"], secret.as_str());
    }
    let shown_text = stdout(&fixture.scan(&target, &["--format", "text", "--show-secrets"]));
    for secret in fixture.secrets() {
        assert!(shown_text.contains(&secret));
    }
}

#[test]
fn dir_target_finds_the_same_keys_and_never_opens_a_fifo() {
    let fixture = fixture();
    let target = format!("dir:{}", fixture.home.display());
    let output = fixture.scan(&target, &["--format", "json"]);
    assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(&output));
    let report = json(&output);
    assert_every_plant_found(&report, &fixture);

    let target = &report["targets"][0];
    assert_eq!(target["kind"], "dir");
    let errors = target["errors"].as_array().unwrap();
    let reason_for = |path: &Path| {
        errors
            .iter()
            .find(|e| e["path"] == path.display().to_string())
            .and_then(|e| e["reason"].as_str())
            .unwrap_or_else(|| panic!("no error for {}: {errors:?}", path.display()))
            .to_string()
    };
    assert!(reason_for(&fixture.fifo).contains("FIFO"));
    assert!(reason_for(&fixture.dangling).contains("dangling symlink"));
    assert_eq!(
        target["unparsed_configs"][0]["path"],
        fixture.broken.display().to_string()
    );
    assert_no_secret(&stdout(&output), fixture.secrets(), "the dir: report");

    // The walk also reads ordinary files: the GitHub token in a project's .env.
    let github = fixture
        .plants
        .iter()
        .find(|p| p.secret.starts_with("ghp_"))
        .unwrap();
    let github = key_with(&report, &fingerprint(ORG_KEY.as_bytes(), &github.secret)).unwrap();
    let env_file = fixture.dev.join(".env").display().to_string();
    assert!(
        github["locations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["kind"] == "file" && l["path"] == env_file && l["line"] == 2),
        "{}",
        github["locations"]
    );

    // Binary and oversized files are skipped and counted, not scanned.
    fs::write(fixture.path("work/blob.bin"), b"\x7fELF\0\0binary").unwrap();
    fs::write(fixture.path("work/huge.log"), vec![b'x'; 300_000]).unwrap();
    let limited = json(&fixture.scan(
        &format!("dir:{}", fixture.home.display()),
        &["--format", "json", "--max-file-size", "200000"],
    ));
    let skipped = &limited["targets"][0]["skipped"];
    assert_eq!(skipped["binary"], 1, "{skipped}");
    assert_eq!(skipped["too-large"], 1, "{skipped}");
    assert_eq!(report_fingerprints(&limited), fixture.fingerprints());

    // A bare directory path is a dir: target.
    let bare = fixture.scan(fixture.home.to_str().unwrap(), &["--format", "json"]);
    let bare = json(&bare);
    assert_eq!(bare["targets"][0]["kind"], "dir");
    assert_eq!(report_fingerprints(&bare), fixture.fingerprints());
}

#[test]
fn file_target_reads_one_config() {
    let fixture = fixture();
    let config = fixture.path(".codex/config.toml");
    let output = fixture.scan(&format!("file:{}", config.display()), &["--format", "json"]);
    assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(&output));
    let report = json(&output);
    let linear = fixture.plants.iter().find(|p| p.client == "codex").unwrap();
    assert_eq!(
        report_fingerprints(&report),
        BTreeSet::from([fingerprint(ORG_KEY.as_bytes(), &linear.secret)])
    );
    let key = &keys(&report)[0];
    assert_eq!(key["scope"]["mcp_servers"][0]["server"], "linear");
    assert_eq!(key["scope"]["projects"], json!(["user:alice"]));
    assert_eq!(report["targets"][0]["kind"], "file");
    assert_eq!(report["targets"][0]["objects_scanned"], 1);
    assert_eq!(report["mcp_servers"].as_array().unwrap().len(), 2);

    // A bare file path is a file: target.
    let bare = json(&fixture.scan(config.to_str().unwrap(), &["--format", "json"]));
    assert_eq!(bare["targets"][0]["kind"], "file");
}

#[test]
fn unreadable_targets_exit_2_with_one_line_naming_the_path() {
    let fixture = fixture();
    let missing = fixture.home.join("no-such-dir");
    for target in [
        format!("dir:{}", missing.display()),
        format!("file:{}", missing.display()),
        format!("mcp:{}", missing.display()),
        missing.display().to_string(),
    ] {
        let output = fixture.scan(&target, &["--format", "json"]);
        assert_eq!(output.status.code(), Some(2), "{target}");
        let err = stderr(&output);
        assert_eq!(err.lines().count(), 1, "{target}: {err}");
        assert!(err.contains(&missing.display().to_string()), "{err}");
        // The report is still written, and says what failed.
        let report = json(&output);
        assert_eq!(report["targets"][0]["failed"], true);
        assert_eq!(report["summary"]["targets_failed"], 1);
    }

    // One readable target is enough for the run to count: its keys decide the exit code.
    let ok = fixture.path(".config/zed/settings.json");
    let output = detector(
        &[
            "scan",
            &format!("dir:{}", missing.display()),
            &format!("file:{}", ok.display()),
            "--format",
            "json",
        ],
        &fixture.home,
        Some(ORG_KEY),
    );
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    assert_eq!(report["targets"].as_array().unwrap().len(), 2);
    assert_eq!(report["summary"]["targets_failed"], 1);
    assert_eq!(report["summary"]["keys"], 1);

    // An unknown scheme is a usage error.
    let output = fixture.scan("ftp:somewhere", &[]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("ftp:"), "{err}");
}

#[test]
fn exit_codes_follow_fail_on() {
    let fixture = fixture();
    // A literal too short for any rule, even the generic one: the config still says it is a
    // secret, so it is reported as `mcp-literal-secret`, high.
    let config = fixture.home.join("one/.mcp.json");
    let secret = random(ALNUM, 7, 99);
    write_json(
        &config,
        &json!({"mcpServers": {"internal": {"command": "internal-mcp",
                                            "env": {"INTERNAL_SERVICE_TOKEN": secret}}}}),
    );
    let target = format!("file:{}", config.display());
    let report = json(&fixture.scan(&target, &["--format", "json"]));
    assert_eq!(keys(&report).len(), 1);
    let key = &keys(&report)[0];
    assert_eq!(key["rule"], "mcp-literal-secret");
    assert_eq!(key["provider"], "unknown");
    assert_eq!(key["severity"], "high");
    assert_eq!(
        key["locations"][0]["mcp_field"],
        "env.INTERNAL_SERVICE_TOKEN"
    );
    assert_eq!(key["locations"][0]["line"], 6);

    for (fail_on, code) in [("low", 1), ("medium", 1), ("high", 1), ("critical", 0)] {
        let output = fixture.scan(&target, &["--format", "json", "--fail-on", fail_on]);
        assert_eq!(output.status.code(), Some(code), "--fail-on {fail_on}");
    }

    // A GitHub token is critical: even --fail-on critical fails.
    let desktop = fixture.path(".config/Claude/claude_desktop_config.json");
    let output = fixture.scan(
        &format!("file:{}", desktop.display()),
        &["--format", "json", "--fail-on", "critical"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json(&output)["keys"][0]["severity"], "critical");

    // References only: nothing to fail on, whatever the threshold.
    let clean = fixture.home.join("clean/.mcp.json");
    write_json(
        &clean,
        &json!({"mcpServers": {"gh": {"command": "npx", "env": {"GITHUB_TOKEN": "${GITHUB_TOKEN}"}}}}),
    );
    let output = fixture.scan(
        &format!("file:{}", clean.display()),
        &["--format", "json", "--fail-on", "low"],
    );
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(json(&output)["summary"]["keys"], 0);
}

#[test]
fn org_key_file_is_created_and_keys_the_fingerprints() {
    let fixture = fixture();
    let key_file = fixture.home.join("keys/org.key");
    let config = fixture.path(".config/zed/settings.json");
    let output = detector(
        &[
            "scan",
            &format!("file:{}", config.display()),
            "--format",
            "json",
            "--org-key-file",
            key_file.to_str().unwrap(),
        ],
        &fixture.home,
        None,
    );
    assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(&output));
    let mode = fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let org_key = fs::read_to_string(&key_file).unwrap();
    let neon = fixture.plants.iter().find(|p| p.client == "zed").unwrap();
    let report = json(&output);
    assert_eq!(
        keys(&report)[0]["fingerprint"],
        fingerprint(org_key.trim().as_bytes(), &neon.secret)
    );

    // Without a flag or the variable, the default key file under $HOME is used (and made).
    let output = detector(
        &[
            "scan",
            &format!("file:{}", config.display()),
            "--format",
            "json",
        ],
        &fixture.home,
        None,
    );
    assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(&output));
    assert!(fixture.home.join(".config/detector/org.key").is_file());
}

#[test]
fn output_file_gets_json_by_default() {
    let fixture = fixture();
    let out = fixture.home.join("report.json");
    let config = fixture.path(".config/zed/settings.json");
    let output = fixture.scan(
        &format!("file:{}", config.display()),
        &["--output", out.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let report: Value = serde_json::from_slice(&fs::read(&out).unwrap()).unwrap();
    assert_eq!(report["schema"], "detector/report/v1");
    assert_eq!(report["summary"]["keys"], 1);
}

#[test]
fn keys_older_than_the_policy_are_overdue() {
    let fixture = fixture();
    let config = fixture.path(".config/zed/settings.json");
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(200 * 86_400);
    fs::File::options()
        .write(true)
        .open(&config)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    let target = format!("file:{}", config.display());

    let report = json(&fixture.scan(&target, &["--format", "json", "--max-age-days", "90"]));
    let key = &keys(&report)[0];
    assert_eq!(key["overdue"], true);
    assert!(key["age_days"].as_i64().unwrap() >= 199);
    assert!(key["violations"]
        .as_array()
        .unwrap()
        .contains(&json!("overdue")));

    let report = json(&fixture.scan(&target, &["--format", "json", "--max-age-days", "365"]));
    assert_eq!(keys(&report)[0]["overdue"], false);
}

#[test]
fn one_scanning_thread_finds_the_same_keys() {
    let fixture = fixture();
    let target = format!("dir:{}", fixture.home.display());
    let one = fixture.scan(&target, &["--format", "json", "--threads", "1"]);
    assert_eq!(one.status.code(), Some(1), "stderr: {}", stderr(&one));
    assert_every_plant_found(&json(&one), &fixture);

    let zero = fixture.scan(&target, &["--threads", "0"]);
    assert_eq!(zero.status.code(), Some(2), "stderr: {}", stderr(&zero));
}

#[test]
fn detector_allow_holds_in_configs_and_credential_files() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("alice");
    // Keys no provider rule knows (only the MCP field and the credential-file field say they
    // are secrets), and one a provider rule knows, each on a line that allows it or not.
    let allowed_field = ["sc-live-", &random(ALNUM, 32, 71)].concat();
    let allowed_github = key("ghp_", ALNUM, 36, 72);
    let allowed_env = ["ak-", &random(ALNUM, 30, 73)].concat();
    let reported_field = ["sc-live-", &random(ALNUM, 32, 74)].concat();
    let reported_env = ["ak-", &random(ALNUM, 30, 75)].concat();
    write(
        &home.join(".codex/config.toml"),
        &format!(
            "[mcp_servers.acme]\ncommand = \"npx\"\nargs = [\"-y\", \"acme-mcp\"]\n\n\
             [mcp_servers.acme.env]\n\
             ACME_API_KEY = \"{allowed_field}\" # detector:allow (test fixture)\n\
             GITHUB_TOKEN = \"{allowed_github}\" # detector:allow\n\
             BILLING_API_KEY = \"{reported_field}\"\n"
        ),
    );
    write(
        &home.join("project/.env"),
        &format!("ACME_TOKEN={allowed_env} # detector:allow\nBILLING_TOKEN={reported_env}\n"),
    );
    let output = detector(
        &[
            "scan",
            &format!("dir:{}", home.display()),
            "--format",
            "json",
        ],
        &home,
        Some(ORG_KEY),
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    let found = report_fingerprints(&report);
    for secret in [&reported_field, &reported_env] {
        assert!(
            found.contains(&fingerprint(ORG_KEY.as_bytes(), secret)),
            "a key on a line without the marker is reported: {report}"
        );
    }
    for secret in [&allowed_field, &allowed_github, &allowed_env] {
        assert!(
            !found.contains(&fingerprint(ORG_KEY.as_bytes(), secret)),
            "a key on a `detector:allow` line is not reported: {report}"
        );
    }
    assert_eq!(found.len(), 2, "{report}");
}

/// A config of about 10 MB whose one server holds `secret`, followed by tiny tables in
/// `format`: what takes the parsers a gigabyte or more.
fn tables_config(format: &str, secret: &str) -> String {
    const SIZE: usize = 10 << 20;
    match format {
        "json" | "jsonc" => {
            let servers = if format == "jsonc" {
                "servers"
            } else {
                "mcpServers"
            };
            let head = format!(
                "// tiny tables\n{{\"{servers}\": {{\"gh\": {{\"command\": \"npx\", \"env\": {{\"GITHUB_TOKEN\": \"{secret}\"}}}}}}, \"x\": ["
            );
            let n = (SIZE - head.len()) / 9;
            format!("{head}{}]}}", vec![r#"{"a":{}}"#; n].join(","))
        }
        "toml" => {
            let head = format!(
                "[mcp_servers.gh]\ncommand = \"npx\"\nenv = {{ GITHUB_TOKEN = \"{secret}\" }}\n[x]\na = ["
            );
            let n = (SIZE - head.len()) / 3;
            format!("{head}{}]\n", vec!["{}"; n].join(","))
        }
        _ => {
            let head = format!(
                "mcpServers:\n  - name: gh\n    command: npx\n    env:\n      GITHUB_TOKEN: {secret}\nx: ["
            );
            let n = (SIZE - head.len()) / 3;
            format!("{head}{}]\n", vec!["{}"; n].join(","))
        }
    }
}

/// A 10 MB config is scanned as text within the kit's memory bound for hostile input: the
/// file, its text and the engine's work (under 40 MiB in the test build), never the parse of
/// a config over its budget (a gigabyte or more).
#[test]
fn configs_over_the_parse_budget_are_scanned_as_text_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, (format, rel)) in [
        ("json", ".cursor/mcp.json"),
        ("jsonc", ".config/Code/User/mcp.json"),
        ("toml", ".codex/config.toml"),
        ("yaml", ".continue/config.yaml"),
    ]
    .into_iter()
    .enumerate()
    {
        let home = tmp.path().join(format!("home-{format}"));
        let config = home.join(rel);
        let secret = key("ghp_", ALNUM, 36, 1300 + i as u64);
        write(&config, &tables_config(format, &secret));
        let target = format!("mcp:{}", home.display());
        let output = kit::rss::bounded(
            std::path::Path::new(crate::DETECTOR),
            &["scan", &target, "--format", "json"],
            &home,
            Some(ORG_KEY),
        );
        assert_eq!(
            output.status.code(),
            Some(1),
            "{format}: {}",
            stderr(&output)
        );
        let report = json(&output);
        // Its bytes were scanned: the key is found, with no server to name.
        assert_eq!(
            report_fingerprints(&report),
            BTreeSet::from([fingerprint(ORG_KEY.as_bytes(), &secret)]),
            "{format}"
        );
        // It is listed as not parsed, and why.
        let unparsed = &report["targets"][0]["unparsed_configs"];
        assert_eq!(unparsed.as_array().map(Vec::len), Some(1), "{unparsed}");
        assert_eq!(unparsed[0]["path"], config.display().to_string());
        let reason = unparsed[0]["reason"].as_str().unwrap();
        let budget = if format.starts_with("json") {
            500_000
        } else {
            250_000
        };
        assert_eq!(
            reason,
            format!("config has more than {budget} elements (values, keys and tables): not parsed"),
            "{format}"
        );
        assert_no_secret(&stdout(&output), [secret], format);
    }
}

#[test]
fn refused_files_at_config_paths_are_not_scanned_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home/lee");
    fs::create_dir_all(home.join(".cursor")).unwrap();
    fs::create_dir_all(home.join(".codex")).unwrap();
    fs::create_dir_all(home.join(".continue")).unwrap();
    // A FIFO and a device where configs belong: never opened (a FIFO would block the scan).
    let fifo = home.join(".cursor/mcp.json");
    let c = CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
    let device = home.join(".codex/config.toml");
    std::os::unix::fs::symlink("/dev/zero", &device).unwrap();
    // A config over --max-file-size: too large, and named, its key unread.
    let big = home.join(".continue/config.yaml");
    let secret = key("ghp_", ALNUM, 36, 1310);
    write(
        &big,
        &format!(
            "mcpServers:\n  - name: gh\n    command: npx\n    env:\n      GITHUB_TOKEN: {secret}\n# {}\n",
            "x".repeat(4000)
        ),
    );
    // A dangling link: cannot be read.
    let dangling = home.join(".claude.json");
    std::os::unix::fs::symlink(home.join("gone.json"), &dangling).unwrap();

    let output = detector(
        &[
            "scan",
            &format!("mcp:{}", home.display()),
            "--format",
            "json",
            "--max-file-size",
            "2000",
        ],
        &home,
        Some(ORG_KEY),
    );
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    let report = json(&output);
    let target = &report["targets"][0];
    let not_scanned: Vec<(String, String, String)> = target["not_scanned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["path"].as_str().unwrap().to_string(),
                n["reason"].as_str().unwrap().to_string(),
                n["detail"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let entry = |path: &Path| {
        not_scanned
            .iter()
            .find(|(p, _, _)| p == path.to_str().unwrap())
            .unwrap_or_else(|| panic!("{} not listed: {not_scanned:#?}", path.display()))
    };
    let fifo_entry = entry(&fifo);
    assert_eq!(fifo_entry.1, "special-file");
    assert_eq!(fifo_entry.2, "not a regular file (FIFO), not opened");
    let device_entry = entry(&device);
    assert_eq!(device_entry.1, "special-file");
    assert_eq!(device_entry.2, "not a regular file (device), not opened");
    let big_entry = entry(&big);
    assert_eq!(big_entry.1, "too-large");
    assert!(
        big_entry.2.starts_with("too large (") && big_entry.2.contains("--max-file-size 2000"),
        "{big_entry:?}"
    );
    assert_eq!(entry(&dangling).1, "unreadable");
    let skipped = &target["skipped"];
    assert_eq!(skipped["special-file"], 2, "{skipped}");
    assert_eq!(skipped["too-large"], 1, "{skipped}");
    assert_eq!(skipped["unreadable"], 1, "{skipped}");
    // Each is named in the target's errors too, with the same words.
    let errors = target["errors"].as_array().unwrap();
    for (path, _, detail) in [fifo_entry, device_entry, big_entry] {
        assert!(
            errors
                .iter()
                .any(|e| e["path"] == path.as_str() && e["reason"] == detail.as_str()),
            "{path} not in errors: {errors:#?}"
        );
    }
    assert_no_secret(&stdout(&output), [secret], "the mcp: report");
}

/// A key anywhere in a server's definition is that server's, with the path of the value that
/// holds it: a positional argument after a subcommand, JSON inside an argument, an access key
/// id beside its secret (`env.AWS_ACCESS_KEY_ID` is no secret name); the server's checks fail
/// for each. Template tokens, masks and the dummy password of an example URL are no keys.
#[test]
fn keys_anywhere_in_a_server_are_attributed_and_placeholders_are_not_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let positional = key("ghp_", ALNUM, 36, 1501);
    let in_json = [
        key("xoxb-", DIGITS, 10, 1502),
        key("-", DIGITS, 10, 1505),
        key("-", ALNUM, 24, 1506),
    ]
    .concat();
    let key_id = key("AKIA", kit::keys::BASE32_UPPER, 16, 1503);
    let secret_key = key("", ALNUM, 40, 1504);
    let config = json!({"mcpServers": {
        "gh": {"command": "npx", "args": ["-y", "acme-gh-mcp", "serve", positional]},
        "chat": {"command": "uvx", "args": [
            "chat-mcp", "--config", json!({"auth": {"bot": in_json}}).to_string()
        ]},
        "aws": {"command": "uvx", "args": ["awslabs.aws-api-mcp-server"], "env": {
            "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret_key
        }},
        "placeholders": {"command": "npx", "args": ["notion-mcp"],
            "env": {
                "NOTION_TOKEN": "ntn_****",
                "TEMPLATE_API_KEY": "{secret}",
                "BRACED_API_KEY": "{{API_KEY}}",
                "MASKED_TOKEN": "***",
                "DATABASE_URL": "postgres://user:pass@localhost:5432/app"
            }
        }
    }});
    write_json(&home.join(".cursor/mcp.json"), &config);
    let target = format!("mcp:{}", home.display());
    let output = detector(&["scan", &target, "--format", "json"], &home, Some(ORG_KEY));
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    let planted = [
        (&positional, "gh", "args[3]"),
        (&in_json, "chat", "args[2].auth.bot"),
        (&key_id, "aws", "env.AWS_ACCESS_KEY_ID"),
        (&secret_key, "aws", "env.AWS_SECRET_ACCESS_KEY"),
    ];
    assert_eq!(
        report_fingerprints(&report),
        planted
            .iter()
            .map(|(secret, _, _)| fingerprint(ORG_KEY.as_bytes(), secret))
            .collect::<BTreeSet<_>>(),
        "the four keys and nothing else"
    );
    for (secret, name, field) in planted {
        let found = key_with(&report, &fingerprint(ORG_KEY.as_bytes(), secret)).unwrap();
        let at = &found["locations"][0];
        assert_eq!(at["mcp_server"], name, "{found:#}");
        assert_eq!(at["mcp_field"], field, "{found:#}");
        let listed = server(&report, "cursor", name);
        let fields: Vec<&str> = listed["fields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["class"] == "literal")
            .filter_map(|f| f["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{listed:#}");
        let check = |name: &str| {
            listed["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["check"] == name)
                .unwrap_or_else(|| panic!("{name} in {listed:#}"))
                .clone()
        };
        assert_eq!(check("env-injection")["pass"], false, "{listed:#}");
        assert_eq!(check("secret-manager")["pass"], false, "{listed:#}");
    }
    // Placeholders configure nothing: the server holds no literal.
    let placeholders = server(&report, "cursor", "placeholders");
    assert!(
        placeholders["fields"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["class"] != "literal"),
        "{placeholders:#}"
    );
    let secrets: BTreeSet<String> = [&positional, &in_json, &key_id, &secret_key]
        .into_iter()
        .cloned()
        .collect();
    assert_no_secret(&stdout(&output), secrets.clone(), "the JSON report");
    assert_no_secret(&stderr(&output), secrets, "standard error");
}

/// A known server (the server catalogue) names the provider of a key the rules can only call
/// generic, and its key-management page goes into the remediation.
#[test]
fn known_servers_name_the_provider_and_where_to_rotate() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let scavio = key("sc-live-", HEX, 24, 1601);
    let brave = key("BSA", ALNUM, 27, 1602);
    let config = json!({"mcpServers": {
        "search": {"command": "npx", "args": ["-y", "@scavio/mcp-server@1.2.0"],
            "env": {"SCAVIO_API_KEY": scavio}},
        "brave": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-brave-search"],
            "env": {"BRAVE_API_KEY": brave}}
    }});
    write_json(&home.join(".cursor/mcp.json"), &config);
    let target = format!("mcp:{}", home.display());
    let output = detector(&["scan", &target, "--format", "json"], &home, Some(ORG_KEY));
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    let of = |secret: &str| key_with(&report, &fingerprint(ORG_KEY.as_bytes(), secret)).unwrap();
    // A generic-format key given to the Scavio server is a Scavio key.
    assert_eq!(of(&scavio)["rule"], "generic-secret-assignment");
    assert_eq!(of(&scavio)["provider"], "Scavio");
    // Brave's key page, as the catalogue has it from the server's documentation.
    let brave_key = of(&brave);
    assert_eq!(brave_key["provider"], "Brave");
    let steps = brave_key["remediation"].to_string();
    assert!(
        steps.contains("https://api-dashboard.search.brave.com/app/keys"),
        "{steps}"
    );
}

/// A structured file no catalogue path names, holding an MCP server map, is read as the config
/// of an unknown client; an API description whose `servers` are only URLs is not.
#[test]
fn server_maps_in_files_no_client_names_are_configs() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let in_yaml = key("ghp_", ALNUM, 36, 1701);
    let in_openapi = key("ghp_", ALNUM, 36, 1702);
    fs::create_dir_all(repo.join("deploy")).unwrap();
    fs::write(
        repo.join("deploy/agents.yaml"),
        format!(
            "mcp_servers:\n  github:\n    command: npx\n    args: [\"-y\", \"@modelcontextprotocol/server-github\"]\n    env:\n      GITHUB_PERSONAL_ACCESS_TOKEN: {in_yaml}\n"
        ),
    )
    .unwrap();
    write_json(
        &repo.join("openapi.json"),
        &json!({"openapi": "3.1.0", "servers": [{"url": "https://api.acme.test"}],
                "info": {"title": "acme", "x-token": in_openapi}}),
    );
    let target = format!("dir:{}", repo.display());
    let output = detector(
        &["scan", &target, "--format", "json"],
        tmp.path(),
        Some(ORG_KEY),
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    let of = |secret: &str| key_with(&report, &fingerprint(ORG_KEY.as_bytes(), secret)).unwrap();
    let at = &of(&in_yaml)["locations"][0];
    assert_eq!(at["kind"], "mcp-config", "{at:#}");
    assert_eq!(at["mcp_client"], "generic", "{at:#}");
    assert_eq!(at["mcp_server"], "github", "{at:#}");
    assert_eq!(
        at["mcp_field"], "env.GITHUB_PERSONAL_ACCESS_TOKEN",
        "{at:#}"
    );
    let at = &of(&in_openapi)["locations"][0];
    assert_eq!(at["kind"], "file", "{at:#}");
    assert!(at.get("mcp_server").is_none(), "{at:#}");
}

/// A home scanned as a directory is one user's: a key its shell profile exports and its MCP
/// config uses is that user's alone, not shared across projects; the profile holds it in clear
/// all the same.
#[test]
fn a_home_scanned_as_a_directory_is_one_users_scope() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home/alice");
    let exported = key("ghp_", ALNUM, 36, 1801);
    let both = key("ghp_", ALNUM, 36, 1802);
    fs::create_dir_all(&home).unwrap();
    fs::write(
        home.join(".zshrc"),
        format!("export GITHUB_TOKEN={exported}\nexport GH_ADMIN_TOKEN={both}\n"),
    )
    .unwrap();
    write_json(
        &home.join(".cursor/mcp.json"),
        &json!({"mcpServers": {
            "github": {"command": "npx", "env": {"GITHUB_TOKEN": "${GITHUB_TOKEN}"}},
            "admin": {"command": "npx", "env": {"GITHUB_TOKEN": both}}
        }}),
    );
    let target = format!("dir:{}", home.display());
    let output = detector(&["scan", &target, "--format", "json"], &home, Some(ORG_KEY));
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    for secret in [&exported, &both] {
        let found = key_with(&report, &fingerprint(ORG_KEY.as_bytes(), secret)).unwrap();
        assert_eq!(
            found["scope"]["projects"],
            json!(["user:alice"]),
            "{found:#}"
        );
        let violations = found["violations"].to_string();
        assert!(
            violations.contains("plaintext-in-shell-profile"),
            "{violations}"
        );
        assert!(
            !violations.contains("shared-across-projects"),
            "{violations}"
        );
        let steps = found["remediation"].to_string();
        assert!(steps.contains(".zshrc"), "{steps}");
    }
    crate::schema::assert_report_valid(&report, "a report with a shell profile violation");

    // A home with no MCP config is its user's all the same.
    let bob = tmp.path().join("home/bob");
    let alone = key("ghp_", ALNUM, 36, 1803);
    fs::create_dir_all(&bob).unwrap();
    fs::write(bob.join(".bashrc"), format!("export GH_TOKEN={alone}\n")).unwrap();
    let target = format!("dir:{}", bob.display());
    let output = detector(&["scan", &target, "--format", "json"], &bob, Some(ORG_KEY));
    let report = json(&output);
    let found = key_with(&report, &fingerprint(ORG_KEY.as_bytes(), &alone)).unwrap();
    assert_eq!(found["scope"]["projects"], json!(["user:bob"]), "{found:#}");
}

/// Secret fields outside the MCP section of a client's file (LLM provider keys) are keys,
/// named by their field; a local model's placeholder name is not.
#[test]
fn provider_keys_beside_the_servers_are_found_by_their_field() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let openai = [
        key("sk-proj-", ALNUM, 40, 1901),
        "T3Blbk".to_string(),
        key("FJ", ALNUM, 40, 1903),
    ]
    .concat();
    let custom = key("", ALNUM, 40, 1902);
    write_json(
        &home.join(".config/opencode/opencode.json"),
        &json!({
            "provider": {
                "openai": {"options": {"apiKey": openai}},
                "acme": {"options": {"apiKey": custom, "baseURL": "https://llm.acme.test/v1"}},
                "local": {"options": {"apiKey": "ollama", "baseURL": "http://localhost:11434/v1"}}
            },
            "mcp": {"docs": {"type": "local", "command": ["npx", "docs-mcp"]}}
        }),
    );
    let target = format!("mcp:{}", home.display());
    let output = detector(&["scan", &target, "--format", "json"], &home, Some(ORG_KEY));
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(
        report_fingerprints(&report),
        [&openai, &custom]
            .iter()
            .map(|s| fingerprint(ORG_KEY.as_bytes(), s))
            .collect::<BTreeSet<_>>()
    );
    for (secret, slot) in [
        (&openai, "provider.openai.options.apiKey"),
        (&custom, "provider.acme.options.apiKey"),
    ] {
        let found = key_with(&report, &fingerprint(ORG_KEY.as_bytes(), secret)).unwrap();
        assert_eq!(found["locations"][0]["slot"], slot, "{found:#}");
    }
}
