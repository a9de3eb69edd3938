//! Realistic homes, one per family of MCP clients, written as people write them: literal keys
//! of many providers in every place a server definition can hold one (`env`, headers, the URL's
//! query and userinfo, a flag's value, `--flag=value`, a positional argument, `KEY=VALUE` in
//! the command, JSON inside an argument, Docker `-e`), beside every reference form and every
//! placeholder a config holds instead. `detector scan mcp:HOME` must find each key, attribute it
//! to its server and field, and report nothing else.
use std::{collections::BTreeSet, fs, path::Path};

use kit::{
    keys::{fingerprint, key, ALNUM, DIGITS, HEX},
    report::{assert_no_secret, report_fingerprints},
    run::{json, stderr, stdout},
};
use serde_json::{json, Value};

use crate::detector;

const ORG_KEY: &str = "homes-test-org";

/// One planted key and where it must be reported.
struct Plant {
    secret: String,
    server: &'static str,
    field: &'static str,
}

fn plant(secret: String, server: &'static str, field: &'static str) -> Plant {
    Plant {
        secret,
        server,
        field,
    }
}

/// Keys of many providers, made at run time from a seed.
struct Keys(u64);

impl Keys {
    fn next(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }
    fn github(&mut self) -> String {
        key("ghp_", ALNUM, 36, self.next())
    }
    fn gitlab(&mut self) -> String {
        key("glpat-", ALNUM, 20, self.next())
    }
    fn slack(&mut self) -> String {
        let n = self.next();
        [
            key("xoxb-", DIGITS, 12, n),
            key("-", DIGITS, 13, n + 100),
            key("-", ALNUM, 24, n + 200),
        ]
        .concat()
    }
    fn stripe(&mut self) -> String {
        key("sk_live_", ALNUM, 32, self.next())
    }
    fn anthropic(&mut self) -> String {
        key("sk-ant-api03-", ALNUM, 93, self.next()) + "AA"
    }
    fn notion(&mut self) -> String {
        key("ntn_", ALNUM, 46, self.next())
    }
    fn linear(&mut self) -> String {
        key("lin_api_", ALNUM, 40, self.next())
    }
    fn tavily(&mut self) -> String {
        key("tvly-dev-", ALNUM, 32, self.next())
    }
    fn firecrawl(&mut self) -> String {
        key("fc-", HEX, 32, self.next())
    }
    fn huggingface(&mut self) -> String {
        key("hf_", ALNUM, 34, self.next())
    }
    fn aws_id(&mut self) -> String {
        key("AKIA", "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, self.next())
    }
    fn aws_secret(&mut self) -> String {
        key("", ALNUM, 40, self.next())
    }
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// Scan `home` and check that the report holds exactly `plants`, each at its server and field.
fn assert_home(home: &Path, plants: &[Plant]) {
    let target = format!("mcp:{}", home.display());
    let output = detector(&["scan", &target, "--format", "json"], home, Some(ORG_KEY));
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    let expected: BTreeSet<String> = plants
        .iter()
        .map(|p| fingerprint(ORG_KEY.as_bytes(), &p.secret))
        .collect();
    let found = report_fingerprints(&report);
    let extra: Vec<&Value> = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| !expected.contains(k["fingerprint"].as_str().unwrap()))
        .collect();
    assert!(extra.is_empty(), "reported but not planted: {extra:#?}");
    for plant in plants {
        let fp = fingerprint(ORG_KEY.as_bytes(), &plant.secret);
        assert!(
            found.contains(&fp),
            "{}/{} not found: {:#}",
            plant.server,
            plant.field,
            report["mcp_servers"]
        );
        let key = kit::report::key_by(&report, &fp);
        let at: Vec<(String, String)> = key["locations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let text = |name: &str| l[name].as_str().unwrap_or_default().to_string();
                (
                    text("mcp_server"),
                    l["mcp_field"]
                        .as_str()
                        .or(l["slot"].as_str())
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        assert!(
            at.contains(&(plant.server.to_string(), plant.field.to_string())),
            "{}/{}: found at {at:?}",
            plant.server,
            plant.field
        );
    }
    let secrets: Vec<&String> = plants.iter().map(|p| &p.secret).collect();
    assert_no_secret(&stdout(&output), &secrets, "the JSON report");
    assert_no_secret(&stderr(&output), &secrets, "standard error");
}

/// Claude Code (`~/.claude.json`: user servers and per-project servers) and a project's
/// `.mcp.json`; Claude Desktop on Linux.
#[test]
fn a_claude_home() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home/dana");
    let project = home.join("src/app");
    fs::create_dir_all(&project).unwrap();
    let mut k = Keys(20_000);
    let (github, slack, stripe) = (k.github(), k.slack(), k.stripe());
    let (notion, linear, tavily, gitlab) = (k.notion(), k.linear(), k.tavily(), k.gitlab());
    let (aws_id, aws_secret) = (k.aws_id(), k.aws_secret());
    let claude = json!({
        "numStartups": 12,
        "mcpServers": {
            "github": {"type": "stdio", "command": "npx",
                "args": ["-y", "@modelcontextprotocol/server-github"],
                "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": github}},
            "slack": {"type": "http", "url": "https://mcp.slack.test/mcp",
                "headers": {"Authorization": format!("Bearer {slack}")}},
            // References and placeholders: no keys.
            "stripe-ref": {"command": "npx", "args": ["-y", "@stripe/mcp", "--tools=all"],
                "env": {"STRIPE_SECRET_KEY": "${STRIPE_SECRET_KEY}"}},
            "docs": {"type": "http", "url": "https://mcp.docs.test/mcp",
                "headers": {"Authorization": "Bearer {token}", "X-Api-Key": "YOUR_API_KEY"}}
        },
        "projects": {
            project.display().to_string(): {
                "mcpServers": {
                    "stripe": {"command": "npx",
                        "args": ["-y", "@stripe/mcp", "--tools=all", format!("--api-key={stripe}")]},
                    "aws": {"command": "uvx", "args": ["awslabs.aws-api-mcp-server@latest"],
                        "env": {"AWS_ACCESS_KEY_ID": aws_id, "AWS_SECRET_ACCESS_KEY": aws_secret,
                                "AWS_REGION": "eu-west-1"}}
                },
                "allowedTools": []
            }
        }
    });
    write(&home.join(".claude.json"), &claude.to_string());
    let project_config = json!({"mcpServers": {
        "notion": {"command": "npx", "args": ["-y", "@notionhq/notion-mcp-server"],
            "env": {"OPENAPI_MCP_HEADERS": json!({"Authorization": format!("Bearer {notion}"),
                "Notion-Version": "2022-06-28"}).to_string()}},
        "linear": {"command": "sh", "args": ["-c", format!("LINEAR_API_KEY={linear} npx -y linear-mcp")]},
        "masked": {"command": "npx", "args": ["-y", "notion-mcp"],
            "env": {"NOTION_TOKEN": "ntn_****", "DATABASE_URL": "postgres://user:pass@localhost/app"}}
    }});
    write(&project.join(".mcp.json"), &project_config.to_string());
    let desktop = json!({"mcpServers": {
        "tavily": {"command": "npx", "args": ["-y", "tavily-mcp@latest", tavily]},
        "gitlab": {"command": "docker",
            "args": ["run", "-i", "--rm", "-e", format!("GITLAB_PERSONAL_ACCESS_TOKEN={gitlab}"), "mcp/gitlab"]}
    }});
    write(
        &home.join(".config/Claude/claude_desktop_config.json"),
        &desktop.to_string(),
    );
    assert_home(
        &home,
        &[
            plant(github, "github", "env.GITHUB_PERSONAL_ACCESS_TOKEN"),
            plant(slack, "slack", "headers.Authorization"),
            plant(stripe, "stripe", "args[3]"),
            plant(aws_id, "aws", "env.AWS_ACCESS_KEY_ID"),
            plant(aws_secret, "aws", "env.AWS_SECRET_ACCESS_KEY"),
            plant(notion, "notion", "env.OPENAPI_MCP_HEADERS.Authorization"),
            plant(linear, "linear", "command:LINEAR_API_KEY"),
            plant(tavily, "tavily", "args[2]"),
            plant(gitlab, "gitlab", "args[4]"),
        ],
    );
}

/// VS Code (`servers`, `inputs`, `${input:…}` and `${env:…}`), Cursor and Cline: JSONC with
/// comments and trailing commas.
#[test]
fn a_vscode_family_home() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home/eli");
    let mut k = Keys(21_000);
    let (github, firecrawl, hf, anthropic) =
        (k.github(), k.firecrawl(), k.huggingface(), k.anthropic());
    let vscode = format!(
        r#"{{
  // Shared with the team: inputs prompt for secrets.
  "inputs": [{{"type": "promptString", "id": "gh", "password": true}}],
  "servers": {{
    "github": {{"type": "http", "url": "https://api.githubcopilot.test/mcp/",
      "headers": {{"Authorization": "Bearer ${{input:gh}}"}}}},
    "firecrawl": {{"command": "npx", "args": ["-y", "firecrawl-mcp"],
      "env": {{"FIRECRAWL_API_KEY": "{firecrawl}"}}}},
    "hf": {{"type": "http", "url": "https://hf.test/mcp?token={hf}"}},
    "env-ref": {{"command": "npx", "args": ["x-mcp"], "env": {{"X_TOKEN": "${{env:X_TOKEN}}"}}}},
  }},
}}"#
    );
    write(&home.join(".config/Code/User/mcp.json"), &vscode);
    let cursor = json!({"mcpServers": {
        "gh": {"command": "docker", "args": ["run", "-i", "--rm",
            "-e", "GITHUB_PERSONAL_ACCESS_TOKEN", "ghcr.io/github/github-mcp-server"],
            "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": github}},
        "claude": {"command": "npx", "args": ["-y", "some-agent-mcp", "--api-key", anthropic]},
        "template": {"command": "npx", "args": ["-y", "tpl-mcp"],
            "env": {"TPL_API_KEY": "{{API_KEY}}", "TPL_TOKEN": "<your-token>"}}
    }});
    write(&home.join(".cursor/mcp.json"), &cursor.to_string());
    assert_home(
        &home,
        &[
            plant(firecrawl, "firecrawl", "env.FIRECRAWL_API_KEY"),
            plant(hf, "hf", "url?token"),
            plant(github, "gh", "env.GITHUB_PERSONAL_ACCESS_TOKEN"),
            plant(anthropic, "claude", "args[3]"),
        ],
    );
}

/// Codex (TOML: `env`, `http_headers`, `bearer_token_env_var`), Continue (YAML: a list of
/// servers, and model keys beside them), Goose (YAML extensions, `env_keys` in the keyring).
#[test]
fn a_cli_clients_home() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home/fay");
    let mut k = Keys(22_000);
    let (github, linear, notion, anthropic, slack) =
        (k.github(), k.linear(), k.notion(), k.anthropic(), k.slack());
    write(
        &home.join(".codex/config.toml"),
        &format!(
            r#"model = "o4-mini"

[mcp_servers.github]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-github"]
env = {{ GITHUB_PERSONAL_ACCESS_TOKEN = "{github}" }}

[mcp_servers.linear]
url = "https://mcp.linear.test/mcp"
http_headers = {{ "Authorization" = "Bearer {linear}" }}

[mcp_servers.remote]
url = "https://mcp.remote.test/mcp"
bearer_token_env_var = "REMOTE_TOKEN"
"#
        ),
    );
    write(
        &home.join(".continue/config.yaml"),
        &format!(
            "name: Local\nversion: 1.0.0\nmodels:\n  - name: claude\n    provider: anthropic\n    model: claude-sonnet-4\n    apiKey: {anthropic}\nmcpServers:\n  - name: notion\n    command: npx\n    args: [\"-y\", \"@notionhq/notion-mcp-server\"]\n    env:\n      NOTION_TOKEN: {notion}\n  - name: placeholder\n    command: npx\n    env:\n      API_KEY: ${{{{ secrets.API_KEY }}}}\n"
        ),
    );
    write(
        &home.join(".config/goose/config.yaml"),
        &format!(
            "extensions:\n  slack:\n    enabled: true\n    type: stdio\n    cmd: npx\n    args: [\"-y\", \"@modelcontextprotocol/server-slack\"]\n    envs:\n      SLACK_BOT_TOKEN: {slack}\n  keyring:\n    enabled: true\n    type: stdio\n    cmd: npx\n    args: [\"-y\", \"k-mcp\"]\n    env_keys: [K_TOKEN]\n"
        ),
    );
    assert_home(
        &home,
        &[
            plant(github, "github", "env.GITHUB_PERSONAL_ACCESS_TOKEN"),
            plant(linear, "linear", "http_headers.Authorization"),
            plant(notion, "notion", "env.NOTION_TOKEN"),
            plant(anthropic, "", "models.0.apiKey"),
            plant(slack, "slack", "envs.SLACK_BOT_TOKEN"),
        ],
    );
}
