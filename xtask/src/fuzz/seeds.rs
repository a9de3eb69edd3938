//! The seed corpora: small, valid inputs of each target, made at run time from the test kit's
//! builders (fake keys included) and the fixtures, written to `fuzz/corpus/<target>/seed-*`
//! (git-ignored). No key-shaped text is kept in the repository for them.
use std::{fs, io::Write, path::Path};

use anyhow::Result;
use kit::{
    image::{gzip, layer_tar, legacy_image, oci_save_image, oci_save_metadata, ImageArchive},
    keys::{key, KnownKeys, ALNUM, HEX, URL_SAFE},
};
use serde_json::json;

/// What `detector::fuzzing::PART` is: the separator of a multi-part input.
const PART: &[u8] = b"\n=====\n";

/// Write the seeds of `target`, replacing the previous seeds (not what libFuzzer added).
pub fn write(root: &Path, target: &str) -> Result<()> {
    let dir = root.join("fuzz/corpus").join(target);
    fs::create_dir_all(&dir)?;
    for entry in fs::read_dir(&dir)? {
        let path = entry?.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
        {
            fs::remove_file(path)?;
        }
    }
    for (name, bytes) in seeds(root, target)? {
        fs::write(dir.join(format!("seed-{name}")), bytes)?;
    }
    Ok(())
}

type Seeds = Vec<(String, Vec<u8>)>;

fn seeds(root: &Path, target: &str) -> Result<Seeds> {
    Ok(match target {
        "mcp_config" => mcp_config(),
        "mcp_fields" => mcp_fields(),
        "secret_file" => secret_file(),
        "archive" => archive()?,
        "git_repo" => git_repo(),
        "git_commit" => git_commit(),
        "image_archive" => image_archive(),
        "image_layout" => image_layout(),
        "report" => report(root)?,
        "agent_log" => agent_log(),
        "rules" => rule_files(root)?,
        "detect" => detect(root)?,
        _ => Vec::new(),
    })
}

fn named(list: Vec<(&str, Vec<u8>)>) -> Seeds {
    list.into_iter().map(|(n, b)| (n.to_string(), b)).collect()
}

fn openai() -> String {
    key(&["sk-", "proj-"].concat(), URL_SAFE, 56, 13)
}

fn anthropic() -> String {
    key(&["sk-", "ant-", "api03-"].concat(), URL_SAFE, 93, 14)
}

fn github() -> String {
    KnownKeys::new(15).next_key().1
}

fn with_selector(format: u8, file: u8, text: &str) -> Vec<u8> {
    let mut out = vec![format, file];
    out.extend_from_slice(text.as_bytes());
    out
}

fn mcp_config() -> Seeds {
    let (openai, anthropic, github) = (openai(), anthropic(), github());
    let json = json!({
        "mcpServers": {
            "openai": {"command": "npx", "args": ["-y", "openai-mcp"], "env": {"OPENAI_API_KEY": openai}},
            "github": {"command": "docker", "args": ["run", "-e", "GITHUB_TOKEN", "ghcr.io/github/github-mcp-server"],
                       "env": {"GITHUB_TOKEN": "${GITHUB_TOKEN}"}},
            "remote": {"url": "https://mcp.example.com/sse?apiKey=abc", "headers": {"Authorization": format!("Bearer {anthropic}")}},
        },
        "projects": {"/home/u/app": {"mcpServers": {"a": {"command": "uvx", "args": ["x", "--api-key", github]}}}},
    });
    let jsonc = format!(
        "// settings\n{{\n  \"mcp\": {{ \"servers\": {{\n    \"s\": {{ \"command\": \"node\", \"args\": [\"s.js\"], \"env\": {{ \"ANTHROPIC_API_KEY\": \"{anthropic}\", }}, }},\n    \"i\": {{ \"type\": \"http\", \"url\": \"https://x.example\", \"headers\": {{ \"Authorization\": \"Bearer ${{input:token}}\" }} }},\n  }} }},\n  /* trailing */\n}}\n"
    );
    let toml = format!(
        "[mcp_servers.openai]\ncommand = \"npx\"\nargs = [\"-y\", \"openai-mcp\"]\nenv = {{ OPENAI_API_KEY = \"{openai}\" }}\n\n[mcp_servers.gh]\ncommand = \"op run -- github-mcp\"\nbearer_token_env_var = \"GITHUB_TOKEN\"\n"
    );
    let yaml = format!(
        "defaults: &defaults\n  GITHUB_TOKEN: {github}\nmcpServers:\n  - name: gh\n    command: npx\n    args: [\"-y\", \"@modelcontextprotocol/server-github\"]\n    env:\n      <<: *defaults\n      OTHER: op://vault/item/field\n"
    );
    let mut seeds = Vec::new();
    for file in 0..4u8 {
        seeds.push((
            format!("json-{file}"),
            with_selector(0, file, &json.to_string()),
        ));
        seeds.push((format!("jsonc-{file}"), with_selector(1, file, &jsonc)));
        seeds.push((format!("toml-{file}"), with_selector(2, file, &toml)));
        seeds.push((format!("yaml-{file}"), with_selector(3, file, &yaml)));
    }
    seeds
}

fn mcp_fields() -> Seeds {
    let (openai, github) = (openai(), github());
    named(vec![
        ("env", json!({"command": "npx", "args": ["-y", "pkg"], "env": {"OPENAI_API_KEY": openai, "DEBUG": "1"}}).to_string().into_bytes()),
        ("argv", json!({"command": format!("GITHUB_TOKEN={github} npx -y server --api-key={openai}")}).to_string().into_bytes()),
        ("remote", json!({"type": "sse", "url": format!("https://u:{github}@mcp.example.com/x?token={openai}"), "headers": {"Authorization": "Bearer ${TOKEN}", "X-Api-Key": "$(vault kv get -field=k secret/x)"}}).to_string().into_bytes()),
        ("zed", json!({"command": {"path": "/usr/bin/uvx", "args": ["srv"], "env": {"API_KEY": "op://v/i/f"}}, "settings": {"oauth": {"clientSecret": openai}}}).to_string().into_bytes()),
        ("text", format!("OPENAI_API_KEY={openai}\nexport GITHUB_TOKEN=\"{github}\"\nurl: https://x?apiKey=${{KEY}}\n").into_bytes()),
    ])
}

fn secret_file() -> Seeds {
    let (openai, github) = (openai(), github());
    let aws_id = key("AKIA", "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, 16);
    let aws_secret = kit::keys::random(kit::keys::BASE64, 40, 17);
    let auth = kit::keys::random(kit::keys::BASE64, 32, 18);
    let files: Vec<(u8, String)> = vec![
        (0, format!("OPENAI_API_KEY={openai}\n# comment\nexport GITHUB_TOKEN='{github}'\nMULTI=\"a\nb\"\n")),
        (1, format!("export OPENAI_API_KEY=\"{openai}\"\nalias x=y\nset -gx GITHUB_TOKEN {github}\n")),
        (2, format!("machine api.example.com login me password {github}\ndefault login x password y\n")),
        (3, format!("//registry.npmjs.org/:_authToken={github}\nalways-auth=true\n")),
        (4, format!("[distutils]\nindex-servers = pypi\n[pypi]\nusername = __token__\npassword = {openai}\n")),
        (5, format!("[default]\naws_access_key_id = {aws_id}\naws_secret_access_key = {aws_secret}\n")),
        (6, format!("{{\"auths\": {{\"ghcr.io\": {{\"auth\": \"{auth}\"}}}}, \"credsStore\": \"desktop\"}}")),
        (7, format!("apiVersion: v1\nusers:\n- name: u\n  user:\n    token: {github}\n    client-key-data: {auth}\n")),
        (8, format!("{{\"type\": \"authorized_user\", \"client_secret\": \"{openai}\", \"refresh_token\": \"{github}\"}}")),
        (9, format!("https://me:{github}@github.com\n")),
    ];
    files
        .into_iter()
        .map(|(pick, text)| {
            let mut bytes = vec![pick];
            bytes.extend_from_slice(text.as_bytes());
            (format!("kind-{pick}"), bytes)
        })
        .collect()
}

fn config_file() -> Vec<u8> {
    json!({"mcpServers": {"o": {"command": "npx", "env": {"OPENAI_API_KEY": openai()}}}})
        .to_string()
        .into_bytes()
}

fn archive() -> Result<Seeds> {
    let env = format!("GITHUB_TOKEN={}\n", github());
    let config = config_file();
    let tar = layer_tar(&[
        ("home/", b""),
        ("home/u/.env", env.as_bytes()),
        ("home/u/.config/Claude/claude_desktop_config.json", &config),
    ]);
    let nested = layer_tar(&[
        ("inner.tar.gz", &gzip(&tar)),
        ("notes.txt", b"nothing here\n"),
    ]);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file(".env", deflated)?;
    zip.write_all(env.as_bytes())?;
    zip.start_file("layer.tar", zip::write::SimpleFileOptions::default())?;
    zip.write_all(&tar)?;
    let zip = zip.finish()?.into_inner();
    Ok(named(vec![
        ("tar", tar.clone()),
        ("tar-gz", gzip(&tar)),
        ("tar-zst", zstd::encode_all(&tar[..], 3)?),
        ("nested", gzip(&nested)),
        ("zip", zip),
        ("gz-text", gzip(env.as_bytes())),
    ]))
}

/// One object of a `git_repo` input: a kind byte and the body.
fn object(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(body);
    out
}

/// The id `detector::fuzzing::git_object_id` gives the `index`th object.
fn id(index: usize) -> [u8; 20] {
    [(index + 1) as u8; 20]
}

fn tree(entries: &[(&str, &str, usize)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (mode, name, index) in entries {
        body.extend_from_slice(format!("{mode} {name}\0").as_bytes());
        body.extend_from_slice(&id(*index));
    }
    body
}

fn commit(tree: usize, parents: &[usize], time: u64) -> Vec<u8> {
    let mut text = format!("tree {}\n", hex(&id(tree)));
    for parent in parents {
        text.push_str(&format!("parent {}\n", hex(&id(*parent))));
    }
    text.push_str(&format!(
        "author A U Thor <a@example.com> {time} +0100\ncommitter C O Mitter <c@example.com> {time} +0000\n\nmessage\n"
    ));
    text.into_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn join(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.join(PART)
}

fn git_repo() -> Seeds {
    let env = format!("OPENAI_API_KEY={}\n", openai());
    let rotated = format!(
        "OPENAI_API_KEY={}\n",
        key(&["sk-", "proj-"].concat(), URL_SAFE, 56, 19)
    );
    // 0: blob .env, 1: blob config, 2: tree config/, 3: root tree, 4: commit,
    // 5: blob .env rotated, 6: root tree 2, 7: commit 2 (parent 4), 8: tag
    let history = vec![
        object(b'b', env.as_bytes()),
        object(b'b', &config_file()),
        object(b't', &tree(&[("100644", "mcp.json", 1)])),
        object(b't', &tree(&[("100644", ".env", 0), ("40000", "config", 2)])),
        object(b'c', &commit(3, &[], 1_700_000_000)),
        object(b'b', rotated.as_bytes()),
        object(b't', &tree(&[("100644", ".env", 5), ("40000", "config", 2), ("160000", "sub", 8)])),
        object(b'c', &commit(6, &[4], 1_700_100_000)),
        object(
            b'g',
            format!("object {}\ntype commit\ntag v1\ntagger T <t@example.com> 1700200000 +0000\n\nrelease\n", hex(&id(7))).as_bytes(),
        ),
    ];
    let single = vec![
        object(b'b', env.as_bytes()),
        object(b't', &tree(&[("100644", ".env", 0)])),
        object(b'c', &commit(1, &[], 1_700_000_000)),
    ];
    named(vec![("history", join(&history)), ("single", join(&single))])
}

fn git_commit() -> Seeds {
    named(vec![
        ("root", commit(1, &[], 1_700_000_000)),
        ("merge", commit(1, &[2, 3], 1_700_000_000)),
        (
            "signed",
            [
                commit(1, &[2], 1_700_000_000),
                b"gpgsig -----BEGIN PGP SIGNATURE-----\n x\n -----END PGP SIGNATURE-----\n"
                    .to_vec(),
            ]
            .concat(),
        ),
    ])
}

fn image_archive() -> Seeds {
    let env = format!("OPENAI_API_KEY={}\n", openai());
    let config = config_file();
    let base = layer_tar(&[
        ("app/", b""),
        ("app/.env", env.as_bytes()),
        ("etc/os-release", b"ID=x\n"),
    ]);
    let top = layer_tar(&[
        ("app/.wh..env", b""),
        ("root/.config/Claude/claude_desktop_config.json", &config),
    ]);
    let run = json!({"Env": [format!("GITHUB_TOKEN={}", github()), "PATH=/bin"], "Cmd": ["/app/run"], "Labels": {"k": "v"}});
    let by = [
        ("COPY app /app", "/bin/sh -c #(nop) COPY dir:x in /app"),
        ("RUN rm", "|1 TOKEN=abc /bin/sh -c rm /app/.env"),
    ];

    let mut legacy = ImageArchive::default();
    let entry = legacy_image(
        &mut legacy,
        "app:legacy",
        &[(&base, by[0].1), (&top, by[1].1)],
        run.clone(),
    );
    legacy.json("manifest.json", &json!([entry]));
    let legacy = legacy.tar().0;

    let mut oci = ImageArchive::default();
    let (amd, amd_entry) = oci_save_image(
        &mut oci,
        "app:oci",
        &[(&base, by[0].0), (&top, by[1].0)],
        run.clone(),
        "linux/amd64",
    );
    let (arm, arm_entry) =
        oci_save_image(&mut oci, "app:oci", &[(&base, by[0].0)], run, "linux/arm64");
    oci_save_metadata(
        &mut oci,
        "app:oci",
        vec![amd, arm],
        vec![amd_entry, arm_entry],
    );
    let oci = oci.tar().0;

    named(vec![
        ("legacy", legacy.clone()),
        ("legacy-gz", gzip(&legacy)),
        ("oci", oci),
    ])
}

fn image_layout() -> Seeds {
    let env = format!("OPENAI_API_KEY={}\n", openai());
    let layer = layer_tar(&[("app/", b""), ("app/.env", env.as_bytes())]);
    let config = json!({
        "created": "2025-01-01T00:00:00Z", "os": "linux", "architecture": "amd64",
        "config": {"Env": [format!("GITHUB_TOKEN={}", github())], "Cmd": ["/app/run"]},
        "history": [{"created": "2025-01-01T00:00:00Z", "created_by": "COPY . /app"}],
        "rootfs": {"type": "layers", "diff_ids": ["sha256:2"]},
    })
    .to_string()
    .into_bytes();
    let descriptor = |n: usize, media: &str| json!({"mediaType": media, "digest": format!("sha256:{n}"), "size": 1});
    // Docker: part 1 config, part 2 layer.
    let docker =
        json!([{"Config": "blobs/sha256/1", "RepoTags": ["app:1"], "Layers": ["blobs/sha256/2"]}])
            .to_string()
            .into_bytes();
    // OCI: index → part 3 (nested index) → part 4 (manifest) → 1 config, 2 layer.
    let manifest = json!({"schemaVersion": 2, "config": descriptor(1, "application/vnd.oci.image.config.v1+json"),
        "layers": [descriptor(2, "application/vnd.oci.image.layer.v1.tar")]})
    .to_string()
    .into_bytes();
    let mut platform_manifest = descriptor(4, "application/vnd.oci.image.manifest.v1+json");
    platform_manifest["platform"] = json!({"os": "linux", "architecture": "amd64"});
    let nested = json!({"schemaVersion": 2, "manifests": [platform_manifest]})
        .to_string()
        .into_bytes();
    let mut top = descriptor(3, "application/vnd.oci.image.index.v1+json");
    top["annotations"] = json!({"org.opencontainers.image.ref.name": "1"});
    let index = json!({"schemaVersion": 2, "manifests": [top]})
        .to_string()
        .into_bytes();

    let with_pick = |pick: u8, parts: &[Vec<u8>]| [vec![pick], join(parts)].concat();
    named(vec![
        (
            "docker",
            with_pick(0, &[docker, config.clone(), layer.clone()]),
        ),
        (
            "oci",
            with_pick(1, &[index, config, layer, nested, manifest]),
        ),
    ])
}

fn report(root: &Path) -> Result<Seeds> {
    let fixture = fs::read(root.join("tests/fixtures/report.json"))?;
    let value: serde_json::Value = serde_json::from_slice(&fixture)?;
    let keys = value["keys"].as_array().cloned().unwrap_or_default();
    let baseline = json!({
        "schema": "detector/baseline/v1", "generated_at": "2025-01-01T00:00:00Z",
        "keys": keys.iter().map(|k| json!({"fingerprint": k["fingerprint"], "rule": k["rule"]})).collect::<Vec<_>>(),
    });
    let mut one_key = value.clone();
    if let Some(list) = one_key["keys"].as_array_mut() {
        list.truncate(1);
    }
    Ok(named(vec![
        ("fixture", fixture),
        ("one-key", serde_json::to_vec(&one_key)?),
        ("baseline", serde_json::to_vec(&baseline)?),
    ]))
}

/// A hash chain of `n` agent records, as the agent writes them.
fn chain(first_seq: u64, n: u64, prev: &mut String) -> Vec<u8> {
    let mut out = Vec::new();
    for seq in first_seq..first_seq + n {
        let kind = match seq % 4 {
            0 => "heartbeat",
            1 => "open",
            2 => "rescan",
            _ => "gap",
        };
        let line = format!(
            r#"{{"time":"2025-01-01T00:00:{:02}.000000000Z","seq":{seq},"prev":"{prev}","type":"{kind}","pid":{},"path":"/home/u/.env","verdict":"alert"}}"#,
            seq % 60,
            1000 + seq
        );
        *prev = sha256_hex(line.as_bytes());
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    kit::image::sha256(bytes)
        .trim_start_matches("sha256:")
        .to_string()
}

fn agent_log() -> Seeds {
    let mut prev = sha256_hex(b"detector/events/v1 genesis");
    let first = chain(1, 6, &mut prev);
    let second = chain(7, 5, &mut prev);
    let mut tampered = first.clone();
    if let Some(at) = tampered.iter().position(|&b| b == b'/') {
        tampered[at] = b'_';
    }
    let last = br#"{"time":"2025-01-01T00:01:00.000000000Z","seq":12,"prev":"x","type":"heartbeat","final":true}"#;
    named(vec![
        ("one-file", first.clone()),
        ("rotated", [second.clone(), first.clone()].join(PART)),
        ("tampered", [tampered, second].join(PART)),
        ("final", [first, last.to_vec()].concat()),
    ])
}

fn rule_files(root: &Path) -> Result<Seeds> {
    let mut seeds = Vec::new();
    let mut paths: Vec<_> = fs::read_dir(root.join("rules"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    for path in paths {
        let name = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        seeds.push((name, fs::read(&path)?));
    }
    Ok(seeds)
}

fn detect(root: &Path) -> Result<Seeds> {
    let mut seeds = rule_files(root)?;
    let mut known = KnownKeys::new(20);
    let mut env = String::new();
    for _ in 0..5 {
        let (name, value) = known.next_key();
        env.push_str(&format!("{name}={value}\n"));
    }
    env.push_str(&format!(
        "ANTHROPIC_API_KEY={}\nhex={}\n",
        anthropic(),
        kit::keys::random(HEX, 40, 21)
    ));
    seeds.push(("env".into(), env.into_bytes()));
    seeds.push(("config".into(), config_file()));
    seeds.push((
        "words".into(),
        kit::keys::random(ALNUM, 4096, 22).into_bytes(),
    ));
    Ok(seeds)
}
