//! `cargo xtask bench hostile`: the crafted inputs of the hardening tests, at their worst,
//! through ours and the peers that take the same input, each run bounded by a deadline.
//!
//! The tests prove that a hostile input is handled (no crash, the cut reported, memory
//! bounded); this measures how long the worst of each takes, which tests must not time. Each
//! input is small (at most 10 MB) and built here at run time into `target/bench-hostile/`
//! (its keys made by the test kit's generator). A run past the deadline is killed and shown
//! as such: that is the hang the input was made to cause. `--before BINARY` adds a column for
//! another build of ours (say, the last release) on the same inputs.
use std::{
    fs,
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::Result;
use kit::{
    image::{layer_tar, legacy_image, tar_header, ImageArchive},
    keys::{key, ALNUM},
    report::one_key_in_many_places,
};
use serde_json::json;

use super::peers::{gitleaks, kingfisher, version};

const DETECTOR: &str = "target/release/detector";
const WORK: &str = "target/bench-hostile";

/// What one tool did with one input.
struct Outcome {
    wall_s: f64,
    max_rss_kib: i64,
    /// `exit 1`, `killed at the 120 s deadline`, `signal 11`.
    status: String,
}

/// One crafted input and the commands that read it.
struct Case {
    name: &'static str,
    /// Ours (the binary's arguments after its path).
    ours: Vec<String>,
    /// gitleaks's and Kingfisher's arguments, when they take this input.
    gitleaks: Option<Vec<String>>,
    kingfisher: Option<Vec<String>>,
}

pub fn run(deadline_s: u64, before: Option<PathBuf>) -> Result<()> {
    let work = PathBuf::from(WORK);
    // The inputs are built by another process: a child's peak RSS (`ru_maxrss`) starts at its
    // parent's high-water mark, which must not be the inputs' size.
    let built = Command::new(std::env::current_exe()?)
        .args(["bench", "hostile-inputs"])
        .status()?;
    if !built.success() {
        anyhow::bail!("building the hostile inputs failed: {built}");
    }
    let deadline = Duration::from_secs(deadline_s);
    let gitleaks = gitleaks()?;
    let kingfisher = kingfisher()?;
    let cases = cases(&work);

    let mut columns = vec![("detector (ours)".to_string(), PathBuf::from(DETECTOR))];
    if let Some(before) = &before {
        columns.push((
            format!("ours before (`{}`)", before.display()),
            before.clone(),
        ));
    }
    println!(
        "| input | {} | {} | {} |",
        columns
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(" | "),
        version(&gitleaks),
        version(&kingfisher)
    );
    println!("|---|{}---|---|", "---|".repeat(columns.len()));
    for case in &cases {
        let mut cells = Vec::new();
        for (_, binary) in &columns {
            let mut cmd = Command::new(binary);
            cmd.args(&case.ours).env("DETECTOR_ORG_KEY", "bench-org");
            cells.push(cell(&run_bounded(&mut cmd, deadline)?));
        }
        for (peer, args) in [(&gitleaks, &case.gitleaks), (&kingfisher, &case.kingfisher)] {
            cells.push(match args {
                Some(args) => cell(&run_bounded(Command::new(peer).args(args), deadline)?),
                None => "does not take it".to_string(),
            });
        }
        println!("| {} | {} |", case.name, cells.join(" | "));
    }
    println!(
        "\nwall time, peak RSS and how it ended; deadline {deadline_s} s (`cargo xtask bench hostile --deadline {deadline_s}`)"
    );
    Ok(())
}

fn cell(outcome: &Outcome) -> String {
    format!(
        "{:.2} s, {:.0} MiB, {}",
        outcome.wall_s,
        outcome.max_rss_kib as f64 / 1024.0,
        outcome.status
    )
}

/// Run `cmd` with its output discarded until it ends or `deadline` passes (then it is
/// killed).
fn run_bounded(cmd: &mut Command, deadline: Duration) -> Result<Outcome> {
    eprintln!("running {cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let waited = super::child::wait(cmd, Some(deadline))?;
    let status = if waited.killed {
        format!("**killed at the {} s deadline**", deadline.as_secs())
    } else {
        match waited.status.code() {
            Some(code) => format!("exit {code}"),
            None => format!("**{}**", waited.status),
        }
    };
    Ok(Outcome {
        wall_s: waited.wall.as_secs_f64(),
        max_rss_kib: waited.max_rss_kib,
        status,
    })
}

fn text(path: &Path) -> String {
    path.display().to_string()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// Build every input under `work` (in its own process: see [`run`]).
pub fn build_inputs() -> Result<()> {
    let work = PathBuf::from(WORK);
    if work.exists() {
        fs::remove_dir_all(&work)?;
    }
    let secret = key("ghp_", ALNUM, 36, 9401);

    // One key on every line of a 10 MB file.
    fs::create_dir_all(work.join("every-line"))?;
    let line = format!("GITHUB_TOKEN={secret}\n");
    fs::write(
        work.join("every-line/big.env"),
        line.repeat(10 * 1024 * 1024 / line.len()),
    )?;

    // A different value assigned to a secret-named variable on every line of a 5 MB file:
    // the generic context rule's windows cover the whole file, and its lazy DFA meets a new
    // state at every line.
    fs::create_dir_all(work.join("assignments"))?;
    let mut text = String::new();
    let mut seed = 1;
    while text.len() < 5 * 1024 * 1024 {
        seed += 1;
        let name = key(
            "",
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ_",
            1 + seed as usize % 40,
            seed,
        );
        let value = key("", ALNUM, 12 + seed as usize % 200, seed);
        text.push_str(&format!("{name}_TOKEN={value}\n"));
    }
    fs::write(work.join("assignments/app.env"), text)?;

    // One key in 100,000 `Env` entries of an image.
    let env: Vec<String> = (0..100_000)
        .map(|i| format!("GITHUB_TOKEN_{i}={secret}"))
        .collect();
    let layer = layer_tar(&[("app/", b""), ("app/README", b"hello\n")]);
    let mut archive = ImageArchive::created_at("2025-01-01T00:00:00Z");
    let image = legacy_image(
        &mut archive,
        "envs:1",
        &[(&layer, "/bin/sh -c #(nop) COPY dir:app in /app")],
        json!({ "Env": env }),
    );
    archive.json("manifest.json", &json!([image]));
    archive.write(&work.join("envs.tar"))?;

    // An image whose second layer is under 10 MB of zstd that decompresses to 256 GiB of
    // zeros (a tar of one file), above a layer with a key.
    let zeros = 256 << 30;
    let bomb = zstd_bomb(
        tar_header("var/lib/zeros.img", zeros).as_bytes(),
        zeros + 1024,
    )?;
    let base = layer_tar(&[
        ("app/", b""),
        ("app/.env", format!("GITHUB_TOKEN={secret}\n").as_bytes()),
    ]);
    let mut archive = ImageArchive::created_at("2025-01-01T00:00:00Z");
    let image = legacy_image(
        &mut archive,
        "bomb:1",
        &[
            (&base, "/bin/sh -c #(nop) COPY file:env in /app/.env"),
            (&bomb, "/bin/sh -c make-zeros"),
        ],
        json!({}),
    );
    archive.json("manifest.json", &json!([image]));
    archive.write(&work.join("layer-bomb.tar"))?;

    // Three saved reports of one key in 100,000 places each.
    for host in REPORT_HOSTS {
        let report = one_key_in_many_places(host, &"0".repeat(64), 100_000);
        fs::write(
            work.join(format!("report-{host}.json")),
            serde_json::to_vec(&report)?,
        )?;
    }
    Ok(())
}

const REPORT_HOSTS: [&str; 3] = ["a", "b", "c"];

/// A zstd stream of `head` and then `zeros` zero bytes: a frame of `head`, then one frame of a
/// GiB of zeros (about 32 KiB), compressed once and repeated, then a frame of the rest (zstd
/// readers take concatenated frames as one stream).
fn zstd_bomb(head: &[u8], zeros: u64) -> Result<Vec<u8>> {
    const GIB: u64 = 1 << 30;
    let frame = |len: u64| zstd::stream::encode_all(std::io::repeat(0).take(len), 3);
    let mut out = zstd::stream::encode_all(head, 3)?;
    let whole = frame(GIB)?;
    for _ in 0..zeros / GIB {
        out.extend_from_slice(&whole);
    }
    out.extend(frame(zeros % GIB)?);
    Ok(out)
}

/// An image archive, as ours and Kingfisher read it (gitleaks takes no image).
fn image_case(name: &'static str, archive: &Path) -> Case {
    Case {
        name,
        ours: strings(&[
            "scan",
            &format!("docker-archive:{}", text(archive)),
            "--format",
            "json",
        ]),
        gitleaks: None,
        kingfisher: Some(strings(&[
            "scan",
            "docker",
            "--archive",
            &text(archive),
            "--no-validate",
            "--no-update-check",
        ])),
    }
}

/// How each tool reads each input under `work`.
fn cases(work: &Path) -> Vec<Case> {
    let dir = work.join("every-line");
    let file = dir.join("big.env");
    let assignments = work.join("assignments");
    let image = work.join("envs.tar");
    let bomb = work.join("layer-bomb.tar");
    let mut merge = strings(&["report", "merge"]);
    merge.extend(
        REPORT_HOSTS
            .iter()
            .map(|host| text(&work.join(format!("report-{host}.json")))),
    );
    vec![
        Case {
            name: "one key on every line of a 10 MB file",
            ours: strings(&["scan", &format!("file:{}", text(&file)), "--format", "json"]),
            gitleaks: Some(strings(&["dir", &text(&dir), "--no-banner"])),
            kingfisher: Some(strings(&[
                "scan",
                &text(&dir),
                "--no-validate",
                "--no-update-check",
            ])),
        },
        Case {
            name: "a different key assigned on every line of a 5 MB file",
            ours: strings(&[
                "scan",
                &format!("file:{}", text(&assignments.join("app.env"))),
                "--format",
                "json",
            ]),
            gitleaks: Some(strings(&["dir", &text(&assignments), "--no-banner"])),
            kingfisher: Some(strings(&[
                "scan",
                &text(&assignments),
                "--no-validate",
                "--no-update-check",
            ])),
        },
        image_case("one key in 100,000 image `Env` entries", &image),
        image_case(
            "a 9 MB zstd image layer that decompresses to 256 GiB",
            &bomb,
        ),
        Case {
            name: "`report merge` of 3 reports, one key in 100,000 places each",
            ours: merge,
            gitleaks: None,
            kingfisher: None,
        },
    ]
}
