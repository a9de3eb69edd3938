//! Realistic homes, one per family of MCP clients, written as people write them: literal keys
//! of many providers in every place a server definition can hold one (`env`, headers, the URL's
//! query and userinfo, a flag's value, `--flag=value`, a positional argument, `KEY=VALUE` in
//! the command, JSON inside an argument, Docker `-e`), beside every reference form and every
//! placeholder a config holds instead. `detector scan mcp:HOME` must find each key, attribute it
//! to its server and field, and report nothing else.
use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

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
    fn groq(&mut self) -> String {
        key("gsk_", ALNUM, 52, self.next())
    }
    fn perplexity(&mut self) -> String {
        key("pplx-", ALNUM, 48, self.next())
    }
    fn openrouter(&mut self) -> String {
        key("sk-or-v1-", HEX, 64, self.next())
    }
    fn replicate(&mut self) -> String {
        key("r8_", ALNUM, 37, self.next())
    }
    /// A database password: no prefix, only its place in a URL says what it is.
    fn password(&mut self) -> String {
        key("", ALNUM, 24, self.next())
    }
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// Scan `home` and check that the report holds exactly `plants`, each at its server and field,
/// and that no server field is a literal but those. Returns the report.
fn assert_home(home: &Path, plants: &[Plant]) -> Value {
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
    // A reference or a placeholder classified as a literal is a false alarm of its own (the
    // seed checks fail on it) even when no rule matches its text.
    let stray: Vec<String> = report["mcp_servers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["fields"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["class"] == "literal" && f["fingerprint"].is_null())
                .map(move |f| format!("{}/{}", s["server"], f["field"]))
        })
        .collect();
    assert!(stray.is_empty(), "literal fields with no key: {stray:?}");
    report
}

/// Check the class of each named field of the servers of `client`: `(server, field, class)`.
fn assert_classes(report: &Value, client: &str, expected: &[(&str, &str, &str)]) {
    for (server, field, class) in expected {
        let found: Vec<&Value> = report["mcp_servers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["client"] == *client && s["server"] == *server)
            .flat_map(|s| s["fields"].as_array().unwrap())
            .filter(|f| f["field"] == *field)
            .collect();
        assert!(
            found.iter().any(|f| f["class"] == *class),
            "{client}/{server}/{field}: want {class}, have {found:?} in {:#}",
            report["mcp_servers"]
        );
    }
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

/// Zed: `context_servers` in a JSONC settings file full of comments and trailing commas, in
/// each shape Zed has had (`command` + `args` + `env`, the older `command: {path, args, env}`,
/// a remote `url` + `headers`, an extension's `settings`), and a project's `.zed/settings.json`
/// (the project is known from Claude Code, which Zed runs as its agent).
#[test]
fn a_zed_home() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home/gus");
    let project = home.join("code/shop");
    fs::create_dir_all(&project).unwrap();
    let mut k = Keys(23_000);
    let (github, linear, groq, github_ext) = (k.github(), k.linear(), k.groq(), k.github());
    let (perplexity, password, replicate) = (k.perplexity(), k.password(), k.replicate());
    let settings = format!(
        r#"// Zed settings
//
// For information on how to configure Zed, see the Zed
// documentation: https://zed.dev/docs/configuring-zed
{{
  "theme": {{ "mode": "system", "light": "One Light", "dark": "One Dark" }},
  "ui_font_size": 16,
  "buffer_font_size": 15,
  "agent": {{
    "default_model": {{ "provider": "zed.dev", "model": "claude-sonnet-4" }},
  }},
  "context_servers": {{
    "github": {{
      "source": "custom",
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-github"],
      "env": {{ "GITHUB_PERSONAL_ACCESS_TOKEN": "{github}" }}, // TODO: move to the keychain
    }},
    /* Remote servers take a URL and headers. */
    "linear": {{
      "source": "custom",
      "url": "https://mcp.linear.test/mcp",
      "headers": {{ "Authorization": "Bearer {linear}" }},
    }},
    // Before Zed 0.194 the command was an object.
    "groq": {{
      "command": {{
        "path": "uvx",
        "args": ["groq-mcp"],
        "env": {{ "GROQ_API_KEY": "{groq}" }},
      }},
      "settings": {{}},
    }},
    "mcp-server-github": {{
      "source": "extension",
      "enabled": true,
      "settings": {{ "github_personal_access_token": "{github_ext}" }},
    }},
    "perplexity": {{
      "source": "custom",
      "command": "uvx",
      "args": ["perplexity-mcp", "--api-key", "{perplexity}"],
    }},
    "postgres": {{
      "source": "custom",
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-postgres", "postgresql://shop:{password}@db.internal:5432/shop"],
    }},
    // Copied from the docs, not filled in yet.
    "docs": {{
      "source": "custom",
      "url": "https://mcp.docs.test/mcp",
      "headers": {{ "Authorization": "Bearer <token>" }},
    }},
    "mcp-server-brave-search": {{
      "source": "extension",
      "settings": {{ "brave_api_key": "YOUR_BRAVE_API_KEY" }},
    }},
    "context7": {{
      "source": "custom",
      "command": "npx",
      "args": ["-y", "@upstash/context7-mcp", "--api-key", "your-api-key-here"],
      // Its documented `DEFAULT_MINIMUM_TOKENS` is in `a_token_count_is_not_a_token`.
      "env": {{ "CONTEXT7_TOKEN": "" }},
    }},
  }},
}}
"#
    );
    write(&home.join(".config/zed/settings.json"), &settings);
    let claude = json!({"projects": {project.display().to_string(): {"allowedTools": []}}});
    write(&home.join(".claude.json"), &claude.to_string());
    let project_settings = format!(
        r#"// Folder-specific settings
{{
  "tab_size": 2,
  "context_servers": {{
    "replicate": {{
      "source": "custom",
      "command": "npx",
      "args": ["-y", "replicate-mcp"],
      "env": {{ "REPLICATE_API_TOKEN": "{replicate}", "PATH": "/usr/local/bin:/usr/bin" }},
    }},
  }},
}}
"#
    );
    write(&project.join(".zed/settings.json"), &project_settings);
    let report = assert_home(
        &home,
        &[
            plant(github, "github", "env.GITHUB_PERSONAL_ACCESS_TOKEN"),
            plant(linear, "linear", "headers.Authorization"),
            plant(groq, "groq", "command.env.GROQ_API_KEY"),
            plant(
                github_ext,
                "mcp-server-github",
                "settings.github_personal_access_token",
            ),
            plant(perplexity, "perplexity", "args[2]"),
            plant(password, "postgres", "args[2]@password"),
            plant(replicate, "replicate", "env.REPLICATE_API_TOKEN"),
        ],
    );
    assert_classes(
        &report,
        "zed",
        &[
            ("docs", "headers.Authorization", "placeholder"),
            (
                "mcp-server-brave-search",
                "settings.brave_api_key",
                "placeholder",
            ),
            ("context7", "args[3]", "placeholder"),
            ("context7", "env.CONTEXT7_TOKEN", "empty"),
        ],
    );
}

/// Windsurf: `mcpServers` with `serverUrl` for remote servers (keys in its path, its query and
/// its headers), `${env:…}` in every field Windsurf interpolates, `disabled` and
/// `disabledTools`; Windsurf Next beside it.
#[test]
fn a_windsurf_home() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home/hana");
    let mut k = Keys(24_000);
    let (github, linear, firecrawl, tavily) = (k.github(), k.linear(), k.firecrawl(), k.tavily());
    let (stripe, slack, openrouter) = (k.stripe(), k.slack(), k.openrouter());
    let config = json!({"mcpServers": {
        "github": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
            "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": github},
            "disabled": false, "disabledTools": ["delete_repository"]},
        "linear": {"serverUrl": "https://mcp.linear.test/mcp",
            "headers": {"Authorization": format!("Bearer {linear}")}},
        // Firecrawl's hosted server takes the key as a path segment, Tavily's in the query.
        "firecrawl": {"serverUrl": format!("https://mcp.firecrawl.test/{firecrawl}/v2/mcp")},
        "tavily": {"serverUrl": format!("https://mcp.tavily.test/mcp/?tavilyApiKey={tavily}")},
        "stripe": {"command": "npx",
            "args": ["-y", "@stripe/mcp", "--tools=all", format!("--api-key={stripe}")]},
        "openrouter": {"command": "npx", "args": ["-y", "openrouter-mcp"],
            "env": {"OPENROUTER_API_KEY": openrouter, "OPENROUTER_DEFAULT_MODEL": "openai/gpt-4o"}},
        // References, as the Windsurf docs recommend.
        "hf": {"serverUrl": "https://hf.test/mcp",
            "headers": {"Authorization": "Bearer ${env:HF_TOKEN}"}},
        "notion": {"command": "npx", "args": ["-y", "@notionhq/notion-mcp-server"],
            "env": {"NOTION_TOKEN": "${env:NOTION_TOKEN}"}},
        "brave": {"command": "npx",
            "args": ["-y", "@brave/brave-search-mcp-server", "--brave-api-key", "${env:BRAVE_API_KEY}"]},
        "exa": {"serverUrl": "https://mcp.exa.test/mcp?exaApiKey=${env:EXA_API_KEY}"},
        // Placeholders.
        "slack-template": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-slack"],
            "env": {"SLACK_BOT_TOKEN": "xoxb-your-bot-token", "SLACK_TEAM_ID": "T01ABCDEF"},
            "disabled": true},
        "apideck": {"serverUrl": "https://mcp.apideck.test/mcp",
            "headers": {"x-apideck-api-key": "YOUR_API_KEY", "x-apideck-app-id": "YOUR_APP_ID"}}
    }});
    write(
        &home.join(".codeium/windsurf/mcp_config.json"),
        &serde_json::to_string_pretty(&config).unwrap(),
    );
    let next = json!({"mcpServers": {
        "slack": {"command": "docker", "args": ["run", "-i", "--rm",
            "--env", format!("SLACK_BOT_TOKEN={slack}"), "--env", "SLACK_TEAM_ID=T01ABCDEF",
            "mcp/slack"]}
    }});
    write(
        &home.join(".codeium/windsurf-next/mcp_config.json"),
        &next.to_string(),
    );
    let report = assert_home(
        &home,
        &[
            plant(github, "github", "env.GITHUB_PERSONAL_ACCESS_TOKEN"),
            plant(linear, "linear", "headers.Authorization"),
            plant(firecrawl, "firecrawl", "serverUrl"),
            plant(tavily, "tavily", "serverUrl?tavilyApiKey"),
            plant(stripe, "stripe", "args[3]"),
            plant(openrouter, "openrouter", "env.OPENROUTER_API_KEY"),
            plant(slack, "slack", "args[4]"),
        ],
    );
    assert_classes(
        &report,
        "windsurf",
        &[
            ("hf", "headers.Authorization", "env-ref"),
            ("notion", "env.NOTION_TOKEN", "env-ref"),
            ("brave", "args[3]", "env-ref"),
            ("exa", "serverUrl?exaApiKey", "env-ref"),
            ("slack-template", "env.SLACK_BOT_TOKEN", "placeholder"),
            ("apideck", "headers.x-apideck-api-key", "placeholder"),
        ],
    );
}

/// Cline and Roo Code, in VS Code and in a fork (`globalStorage/…/settings`), with their own
/// fields (`alwaysAllow`, `autoApprove`, `disabled`, `timeout`, `watchPaths`), marketplace
/// server names, Smithery's JSON `--config` argument, and a project's `.roo/mcp.json` (the
/// project is known from VS Code's workspace storage).
#[test]
fn a_cline_and_roo_home() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home/ivo");
    let project = home.join("work/api");
    fs::create_dir_all(&project).unwrap();
    let mut k = Keys(25_000);
    let (github, slack, perplexity, anthropic) =
        (k.github(), k.slack(), k.perplexity(), k.anthropic());
    let (gitlab, notion, hf, password) = (k.gitlab(), k.notion(), k.huggingface(), k.password());
    let (linear, stripe) = (k.linear(), k.stripe());

    const MARKET_GITHUB: &str = "github.com/modelcontextprotocol/servers/tree/main/src/github";
    let cline = json!({"mcpServers": {
        MARKET_GITHUB: {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
            "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": github},
            "disabled": false, "autoApprove": ["search_repositories", "get_file_contents"]},
        "slack": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-slack"],
            "env": {"SLACK_BOT_TOKEN": slack, "SLACK_TEAM_ID": "T01ABCDEF"},
            "alwaysAllow": [], "disabled": true, "timeout": 60},
        "perplexity": {"command": "npx", "args": ["-y", "@smithery/cli@latest", "run",
            "@arjunkmrm/perplexity-search", "--config",
            json!({"perplexityApiKey": perplexity}).to_string()],
            "disabled": false, "autoApprove": []},
        "linear": {"type": "streamableHttp", "url": "https://mcp.linear.test/mcp",
            "headers": {"Authorization": format!("Bearer {linear}")}, "disabled": false},
        // Placeholders from the marketplace's install notes.
        "sentry": {"command": "npx", "args": ["-y", "@sentry/mcp-server"],
            "env": {"SENTRY_ACCESS_TOKEN": "<YOUR_SENTRY_TOKEN>", "SENTRY_HOST": "sentry.io"},
            "disabled": true, "autoApprove": []},
        "filesystem": {"command": "npx",
            "args": ["-y", "@modelcontextprotocol/server-filesystem", "${workspaceFolder}"]}
    }});
    write(
        &home.join(".config/Code/User/globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json"),
        &serde_json::to_string_pretty(&cline).unwrap(),
    );
    // Cline again, in a VS Code fork.
    let cline_fork = json!({"mcpServers": {
        "claude": {"command": "npx", "args": ["-y", "some-agent-mcp", "--anthropic-api-key", anthropic],
            "disabled": false, "autoApprove": []}
    }});
    write(
        &home.join(".config/VSCodium/User/globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json"),
        &serde_json::to_string_pretty(&cline_fork).unwrap(),
    );

    let roo = json!({"mcpServers": {
        "gitlab": {"command": "docker", "args": ["run", "-i", "--rm",
            "-e", "GITLAB_PERSONAL_ACCESS_TOKEN", "-e", "GITLAB_API_URL", "mcp/gitlab"],
            "env": {"GITLAB_PERSONAL_ACCESS_TOKEN": gitlab, "GITLAB_API_URL": "https://gitlab.com/api/v4"},
            "alwaysAllow": ["search_repositories"], "disabled": false},
        "notion": {"command": "npx", "args": ["-y", "@notionhq/notion-mcp-server"],
            "env": {"NOTION_TOKEN": notion}, "alwaysAllow": [], "disabled": false},
        "hf": {"type": "streamable-http", "url": format!("https://hf.test/mcp?token={hf}"),
            "disabled": false},
        // Roo's own substitution, a shell default and a template token.
        "brave": {"command": "npx", "args": ["-y", "@brave/brave-search-mcp-server"],
            "env": {"BRAVE_API_KEY": "${env:BRAVE_API_KEY}"}, "alwaysAllow": []},
        "exa": {"command": "npx", "args": ["-y", "exa-mcp-server"],
            "env": {"EXA_API_KEY": "${EXA_API_KEY:-}", "EXA_TIMEOUT": "${EXA_TIMEOUT:-30}"}},
        "tpl": {"type": "sse", "url": "https://mcp.tpl.test/sse",
            "headers": {"Authorization": "Bearer {{API_KEY}}"}}
    }});
    write(
        &home.join(
            ".config/Code/User/globalStorage/rooveterinaryinc.roo-cline/settings/mcp_settings.json",
        ),
        &serde_json::to_string_pretty(&roo).unwrap(),
    );
    let workspace = json!({"folder": format!("file://{}", project.display())});
    write(
        &home.join(".config/Code/User/workspaceStorage/3f2a9c1d/workspace.json"),
        &workspace.to_string(),
    );
    let roo_project = json!({"mcpServers": {
        "postgres": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-postgres",
            format!("postgresql://api:{password}@db.api.internal:5432/api")],
            "cwd": "${workspaceFolder}", "watchPaths": ["${workspaceFolder}/migrations"],
            "alwaysAllow": ["query"], "disabled": false},
        "stripe": {"command": "sh", "args": ["-c",
            format!("STRIPE_SECRET_KEY={stripe} exec npx -y @stripe/mcp --tools=all")],
            "disabled": false},
        // As the server's README shows it, and a documentation host's.
        "readme-db": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-postgres",
            "postgresql://user:password@localhost:5432/db"]},
        "docs-db": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-postgres",
            "postgresql://app:Qw7rT2pLx9@db.example.com:5432/app"]},
        "masked": {"command": "npx", "args": ["-y", "notion-mcp"],
            "env": {"NOTION_TOKEN": "***"}}
    }});
    write(
        &project.join(".roo/mcp.json"),
        &serde_json::to_string_pretty(&roo_project).unwrap(),
    );
    let report = assert_home(
        &home,
        &[
            plant(github, MARKET_GITHUB, "env.GITHUB_PERSONAL_ACCESS_TOKEN"),
            plant(slack, "slack", "env.SLACK_BOT_TOKEN"),
            plant(perplexity, "perplexity", "args[5].perplexityApiKey"),
            plant(linear, "linear", "headers.Authorization"),
            plant(anthropic, "claude", "args[3]"),
            plant(gitlab, "gitlab", "env.GITLAB_PERSONAL_ACCESS_TOKEN"),
            plant(notion, "notion", "env.NOTION_TOKEN"),
            plant(hf, "hf", "url?token"),
            plant(password, "postgres", "args[2]@password"),
            plant(stripe, "stripe", "command:STRIPE_SECRET_KEY"),
        ],
    );
    assert_classes(
        &report,
        "cline",
        &[("sentry", "env.SENTRY_ACCESS_TOKEN", "placeholder")],
    );
    assert_classes(
        &report,
        "roo-code",
        &[
            ("brave", "env.BRAVE_API_KEY", "env-ref"),
            ("exa", "env.EXA_API_KEY", "env-ref"),
            ("tpl", "headers.Authorization", "env-ref"),
            ("readme-db", "args[2]@password", "placeholder"),
            ("docs-db", "args[2]@password", "placeholder"),
            ("masked", "env.NOTION_TOKEN", "placeholder"),
        ],
    );
}

/// Kiro: the user's `~/.kiro/settings/mcp.json` and a project's (known from Kiro's own
/// workspace storage, Kiro being a VS Code fork), with `disabled`, `autoApprove` and
/// `disabledTools`, `${VAR}` references in `env`, and a CLI custom agent's JSON file.
#[test]
fn a_kiro_home() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home/jun");
    let project = home.join("projects/infra");
    fs::create_dir_all(&project).unwrap();
    let mut k = Keys(26_000);
    let (aws_id, aws_secret, github, tavily) = (k.aws_id(), k.aws_secret(), k.github(), k.tavily());
    let (firecrawl, gitlab, linear) = (k.firecrawl(), k.gitlab(), k.linear());
    let user = json!({"mcpServers": {
        "aws-docs": {"command": "uvx", "args": ["awslabs.aws-documentation-mcp-server@latest"],
            "env": {"FASTMCP_LOG_LEVEL": "ERROR", "AWS_REGION": "us-east-1"},
            "disabled": false, "autoApprove": []},
        "aws-api": {"command": "uvx", "args": ["awslabs.aws-api-mcp-server@latest"],
            "env": {"AWS_ACCESS_KEY_ID": aws_id, "AWS_SECRET_ACCESS_KEY": aws_secret,
                "AWS_REGION": "eu-central-1"},
            "disabled": false, "autoApprove": ["suggest_aws_commands"],
            "disabledTools": ["call_aws"]},
        "github": {"url": "https://api.githubcopilot.test/mcp/",
            "headers": {"Authorization": format!("Bearer {github}")}, "disabled": false},
        "tavily": {"command": "npx", "args": ["-y", "tavily-mcp@0.2.1"],
            "env": {"TAVILY_API_KEY": tavily}, "disabled": false, "autoApprove": ["tavily-search"]},
        // References Kiro expands, and placeholders.
        "gitlab-ref": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-gitlab"],
            "env": {"GITLAB_PERSONAL_ACCESS_TOKEN": "${GITLAB_TOKEN}",
                "GITLAB_API_URL": "${GITLAB_API_URL:-https://gitlab.com/api/v4}"}},
        "fetch": {"command": "uvx", "args": ["mcp-server-fetch"], "env": {},
            "disabled": true, "autoApprove": []},
        "brave": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-brave-search"],
            "env": {"BRAVE_API_KEY": "YOUR_API_KEY_HERE"}, "disabled": true}
    }});
    write(
        &home.join(".kiro/settings/mcp.json"),
        &serde_json::to_string_pretty(&user).unwrap(),
    );
    let workspace = json!({"folder": format!("file://{}", project.display())});
    write(
        &home.join(".config/Kiro/User/workspaceStorage/9d41be07/workspace.json"),
        &workspace.to_string(),
    );
    let project_config = json!({"mcpServers": {
        "firecrawl": {"command": "npx", "args": ["-y", "firecrawl-mcp"],
            "env": {"FIRECRAWL_API_KEY": firecrawl, "FIRECRAWL_RETRY_MAX_ATTEMPTS": "5"},
            "disabled": false, "autoApprove": ["firecrawl_scrape"], "disabledTools": ["firecrawl_crawl"]},
        "gitlab": {"command": "docker", "args": ["run", "-i", "--rm",
            "-e", format!("GITLAB_PERSONAL_ACCESS_TOKEN={gitlab}"), "mcp/gitlab"],
            "disabled": false},
        "terraform": {"command": "docker", "args": ["run", "-i", "--rm",
            "-v", "${HOME}/.terraform.d:/root/.terraform.d", "hashicorp/terraform-mcp-server"]}
    }});
    write(
        &project.join(".kiro/settings/mcp.json"),
        &serde_json::to_string_pretty(&project_config).unwrap(),
    );
    let agent = json!({
        "name": "reviewer",
        "description": "Reviews pull requests",
        "prompt": "You review code.",
        "mcpServers": {
            "linear": {"command": "npx", "args": ["-y", "mcp-remote", "https://mcp.linear.test/sse",
                "--header", format!("Authorization: Bearer {linear}")]}
        },
        "tools": ["@linear"],
        "allowedTools": ["fs_read"]
    });
    write(
        &home.join(".kiro/agents/reviewer.json"),
        &serde_json::to_string_pretty(&agent).unwrap(),
    );
    let report = assert_home(
        &home,
        &[
            plant(aws_id, "aws-api", "env.AWS_ACCESS_KEY_ID"),
            plant(aws_secret, "aws-api", "env.AWS_SECRET_ACCESS_KEY"),
            plant(github, "github", "headers.Authorization"),
            plant(tavily, "tavily", "env.TAVILY_API_KEY"),
            plant(firecrawl, "firecrawl", "env.FIRECRAWL_API_KEY"),
            plant(gitlab, "gitlab", "args[4]"),
            plant(linear, "linear", "args[4]"),
        ],
    );
    assert_classes(
        &report,
        "kiro",
        &[
            ("gitlab-ref", "env.GITLAB_PERSONAL_ACCESS_TOKEN", "env-ref"),
            ("brave", "env.BRAVE_API_KEY", "placeholder"),
        ],
    );
}

/// opencode: `mcp` (v1) in `opencode.json` and `mcp.servers` (v2) in `opencode.jsonc`, local
/// servers as one command array with `environment`, remote servers with `url` and `headers`,
/// `{env:…}` and `{file:…}` references, and provider keys beside the servers.
#[test]
fn an_opencode_home() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home/kai");
    let mut k = Keys(27_000);
    let (github, tavily, linear, anthropic) = (k.github(), k.tavily(), k.linear(), k.anthropic());
    let (slack, groq, notion) = (k.slack(), k.groq(), k.notion());
    let v1 = json!({
        "$schema": "https://opencode.ai/config.json",
        "theme": "opencode",
        "model": "anthropic/claude-sonnet-4-5",
        "provider": {
            "anthropic": {"options": {"apiKey": anthropic}},
            "openai": {"options": {"apiKey": "{file:~/.secrets/openai-key}"}},
            "groq": {"options": {"apiKey": "{env:GROQ_API_KEY}"}}
        },
        "mcp": {
            "github": {"type": "local",
                "command": ["npx", "-y", "@modelcontextprotocol/server-github"],
                "enabled": true,
                "environment": {"GITHUB_PERSONAL_ACCESS_TOKEN": github}},
            "tavily": {"type": "local",
                "command": ["npx", "-y", "tavily-mcp", "--api-key", tavily], "enabled": true},
            "linear": {"type": "remote", "url": "https://mcp.linear.test/mcp", "enabled": true,
                "headers": {"Authorization": format!("Bearer {linear}")}},
            "slack": {"type": "local",
                "command": ["env", format!("SLACK_BOT_TOKEN={slack}"), "npx", "-y",
                    "@modelcontextprotocol/server-slack"],
                "enabled": false},
            // References opencode substitutes.
            "context7": {"type": "remote", "url": "https://mcp.context7.test/mcp",
                "headers": {"CONTEXT7_API_KEY": "{env:CONTEXT7_API_KEY}"}},
            "sentry": {"type": "remote", "url": "https://mcp.sentry.test/mcp",
                "headers": {"Authorization": "Bearer {file:~/.config/sentry/token}"}},
            "stripe": {"type": "local", "command": ["npx", "-y", "@stripe/mcp", "--tools=all"],
                "environment": {"STRIPE_SECRET_KEY": "{env:STRIPE_SECRET_KEY}"}}
        }
    });
    write(
        &home.join(".config/opencode/opencode.json"),
        &serde_json::to_string_pretty(&v1).unwrap(),
    );
    let v2 = format!(
        r#"{{
  "$schema": "https://opencode.ai/config.json",
  // Servers live under mcp.servers since v2.
  "mcp": {{
    "servers": {{
      "groq": {{
        "type": "local",
        "command": ["uvx", "groq-mcp"],
        "environment": {{ "GROQ_API_KEY": "{groq}" }},
      }},
      "notion": {{
        "type": "remote",
        "url": "https://mcp.notion.test/mcp",
        "headers": {{ "Authorization": "Bearer {notion}" }},
        "disabled": true,
      }},
      "exa": {{
        "type": "local",
        "command": ["npx", "-y", "exa-mcp-server"],
        "environment": {{ "EXA_API_KEY": "your-exa-api-key-here" }},
      }},
    }},
  }},
}}
"#
    );
    write(&home.join(".config/opencode/opencode.jsonc"), &v2);
    let report = assert_home(
        &home,
        &[
            plant(anthropic, "", "provider.anthropic.options.apiKey"),
            plant(github, "github", "environment.GITHUB_PERSONAL_ACCESS_TOKEN"),
            plant(tavily, "tavily", "command[4]"),
            plant(linear, "linear", "headers.Authorization"),
            plant(slack, "slack", "command[1]"),
            plant(groq, "groq", "environment.GROQ_API_KEY"),
            plant(notion, "notion", "headers.Authorization"),
        ],
    );
    assert_classes(
        &report,
        "opencode",
        &[
            ("context7", "headers.CONTEXT7_API_KEY", "env-ref"),
            ("stripe", "environment.STRIPE_SECRET_KEY", "env-ref"),
            ("sentry", "headers.Authorization", "env-ref"),
            ("exa", "environment.EXA_API_KEY", "placeholder"),
        ],
    );
}

/// Context7's documented `DEFAULT_MINIMUM_TOKENS` (and any `MAX_TOKENS`) counts a model's
/// tokens: `TOKENS` is not a secret word (`rules/generic.toml`, `not_word_prefixes`).
#[test]
fn a_token_count_is_not_a_token() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home/gus");
    let github = Keys(23_500).github();
    let settings = format!(
        r#"{{
  "context_servers": {{
    "github": {{ "command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
      "env": {{ "GITHUB_PERSONAL_ACCESS_TOKEN": "{github}" }} }},
    "context7": {{
      "command": "npx",
      "args": ["-y", "@upstash/context7-mcp"],
      "env": {{ "DEFAULT_MINIMUM_TOKENS": "10000", "MAX_TOKENS": "4096" }},
    }},
  }},
}}
"#
    );
    write(&home.join(".config/zed/settings.json"), &settings);
    assert_home(
        &home,
        &[plant(github, "github", "env.GITHUB_PERSONAL_ACCESS_TOKEN")],
    );
}

/// One config file of the catalogue (`catalogue/clients.toml`), as the test reads it.
struct CatalogueFile {
    client: String,
    path: String,
    scope: String,
    format: String,
    servers: Vec<String>,
}

/// Every `[[clients.files]]` entry of the catalogue, with its `os`, read now: a new entry is
/// covered without touching this test.
fn catalogue_files() -> Vec<(String, CatalogueFile)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalogue/clients.toml");
    let catalogue: toml::Value = toml::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    let text = |v: &toml::Value, name: &str| v[name].as_str().unwrap().to_string();
    let mut files = Vec::new();
    for client in catalogue["clients"].as_array().unwrap() {
        for file in client["files"].as_array().unwrap() {
            files.push((
                text(file, "os"),
                CatalogueFile {
                    client: text(client, "id"),
                    path: text(file, "path"),
                    scope: text(file, "scope"),
                    format: text(file, "format"),
                    servers: file["servers"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s.as_str().unwrap().to_string())
                        .collect(),
                },
            ));
        }
    }
    files
}

/// A catalogue path with its wildcards filled in (`*` stands for one name).
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|c| {
            if c == "*" {
                "Code".to_string()
            } else {
                c.replace('*', "x")
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Put `server` (name → definition) at the dotted path `at` of `doc`.
fn insert_server(doc: &mut Value, at: &str, name: &str, server: Value) {
    let mut node = doc;
    for part in at.split('.') {
        node = node
            .as_object_mut()
            .unwrap()
            .entry(part)
            .or_insert_with(|| json!({}));
    }
    node[name] = server;
}

/// Write each planted file's document in its catalogue format.
fn write_documents(documents: &BTreeMap<PathBuf, (String, Value)>) {
    for (path, (format, doc)) in documents {
        let text = match format.as_str() {
            "json" | "jsonc" => serde_json::to_string_pretty(doc).unwrap(),
            "toml" => toml::to_string(doc).unwrap(),
            "yaml" => serde_norway::to_string(doc).unwrap(),
            other => panic!("no writer for the catalogue format {other}"),
        };
        write(path, &text);
    }
}

/// Every path the catalogue gives for `os` (macOS, Windows), scanned by this (Linux) build:
/// a server with a key of its own in each file, the file where a user of that system has it.
/// `mcp:HOME` finds each per-user config under the home and names its client and server; a
/// scan of the whole disk (`dir:ROOT`, a backup or a mounted disk of that system: the home
/// at `Users/<name>`, system-wide configs at their place under the root) finds the key of
/// every file, system-wide ones included, and names the client wherever one client owns the
/// path.
fn every_catalogued_path_of(os: &str, seed: u64) {
    let catalogue = catalogue_files();
    let files: Vec<&CatalogueFile> = catalogue
        .iter()
        .filter(|(o, _)| o == os)
        .map(|(_, f)| f)
        .collect();
    assert!(
        !files.is_empty(),
        "no os = \"{os}\" entries in the catalogue"
    );
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("disk");
    let home = root.join("Users/mira");
    let mut k = Keys(seed);
    let mut documents: BTreeMap<PathBuf, (String, Value)> = BTreeMap::new();
    // (secret, client, server, scope, path relative to the disk)
    let mut planted = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let base = if file.scope == "system" { &root } else { &home };
        if file.scope == "project" {
            continue; // not a place of a home or a disk: a project's own file
        }
        let relative = concrete(&file.path);
        let path = base.join(&relative);
        let secret = k.github();
        let server = format!("{}-{i}", file.client);
        let (_, doc) = documents
            .entry(path.clone())
            .or_insert_with(|| (file.format.clone(), json!({})));
        match file.servers.first() {
            Some(at) => insert_server(
                doc,
                at,
                &server,
                json!({"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
                       "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": secret}}),
            ),
            // A file of secrets and no servers (Goose's secrets.yaml).
            None => doc[format!("GITHUB_TOKEN_{i}")] = json!(secret),
        }
        let rel = path.strip_prefix(&root).unwrap().display().to_string();
        planted.push((
            secret,
            file.client.clone(),
            (!file.servers.is_empty()).then_some(server),
            file.scope.clone(),
            rel,
        ));
    }
    write_documents(&documents);
    // The clients whose catalogue paths (of any system) name this file: a walk of a disk
    // sees the path only.
    let owners = |rel: &str| -> BTreeSet<String> {
        catalogue
            .iter()
            .filter(|(_, f)| Path::new(rel).ends_with(concrete(&f.path)))
            .map(|(_, f)| f.client.clone())
            .collect()
    };

    // The home, as `mcp:HOME`: every per-user file, its client and its server.
    let target = format!("mcp:{}", home.display());
    let output = detector(&["scan", &target, "--format", "json"], &home, Some(ORG_KEY));
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    for (secret, client, server, scope, rel) in &planted {
        if scope == "system" {
            continue;
        }
        let key = kit::report::key_of(&report, ORG_KEY, secret);
        let at: Vec<(String, String)> = key["scope"]["mcp_servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["client"].as_str().unwrap().into(),
                    s["server"].as_str().unwrap().into(),
                )
            })
            .collect();
        let claimed_by = owners(rel);
        match server {
            Some(server) if claimed_by.len() == 1 => assert!(
                at.contains(&(client.clone(), server.clone())),
                "{os} {rel}: {client}/{server} not among {at:?}"
            ),
            _ => {
                // A file several clients share (VS Code's settings.json holds Augment's
                // servers too) is read as one of them only: discovery keeps one client per
                // path. Its key must still be found there and named after one of them.
                let clients: BTreeSet<String> = kit::report::locations(key)
                    .iter()
                    .filter_map(|l| l["mcp_client"].as_str().map(str::to_string))
                    .collect();
                assert!(
                    clients.iter().any(|c| claimed_by.contains(c)),
                    "{os} {rel}: none of {claimed_by:?} among {clients:?}: {key:#}"
                );
            }
        }
    }
    let secrets: Vec<&String> = planted.iter().map(|p| &p.0).collect();
    assert_no_secret(&stdout(&output), &secrets, "the JSON report");

    // The disk, as `dir:ROOT`: every file, system-wide ones too.
    let target = format!("dir:{}", root.display());
    let output = detector(&["scan", &target, "--format", "json"], &home, Some(ORG_KEY));
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    for (secret, client, _, _, rel) in &planted {
        let key = kit::report::key_of(&report, ORG_KEY, secret);
        let clients: BTreeSet<String> = kit::report::locations(key)
            .iter()
            .filter_map(|l| l["mcp_client"].as_str().map(str::to_string))
            .collect();
        let claimed_by = owners(rel);
        if claimed_by.len() == 1 {
            assert!(
                clients.contains(client),
                "{os} {rel}: {client} not among {clients:?}: {key:#}"
            );
        } else {
            assert!(
                clients.iter().any(|c| claimed_by.contains(c)),
                "{os} {rel}: none of {claimed_by:?} among {clients:?}"
            );
        }
    }
    assert_no_secret(&stdout(&output), &secrets, "the JSON report");
}

/// A macOS home and disk (`Library/Application Support/…`, `/Library/…`, `/etc/…`) scanned by
/// the Linux build: every `os = "macos"` path of the catalogue.
#[test]
fn every_catalogued_macos_path_is_found() {
    every_catalogued_path_of("macos", 24_000);
}

/// A Windows profile and system drive (`AppData/Roaming/…`, `ProgramData/…`,
/// `Program Files/…`) scanned by the Linux build: every `os = "windows"` path.
#[test]
fn every_catalogued_windows_path_is_found() {
    every_catalogued_path_of("windows", 24_500);
}
