//! Headless Chromium on a local page: the DOM after its scripts ran, the browser's log, and
//! every request the page made, from Chromium's own network log (the browser's background
//! requests, which name no page, are left out).
use std::{
    fs,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

/// What Chromium made of a page.
pub struct Page {
    /// The DOM, serialised once the page loaded and its scripts ran.
    pub dom: String,
    /// Chromium's log on standard error (console messages show as `CONSOLE`).
    pub log: String,
    /// The URLs the page itself asked for, besides the page.
    pub requests: Vec<String>,
}

impl Page {
    /// The console lines of the log.
    pub fn console(&self) -> Vec<&str> {
        self.log.lines().filter(|l| l.contains("CONSOLE")).collect()
    }
}

/// Open `file` (with `fragment`, e.g. `#state=open`) in headless Chromium with its profile in
/// `profile`. Output goes to files (a DOM larger than a pipe's buffer must not stall it), and
/// a browser that does not finish in two minutes is killed.
pub fn open(file: &Path, fragment: &str, profile: &Path) -> Page {
    let url = format!("file://{}{fragment}", file.display());
    let dom_path = profile.with_extension("dom");
    let log_path = profile.with_extension("log");
    let net_path = profile.with_extension("netlog");
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.display()),
            &format!("--log-net-log={}", net_path.display()),
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            &url,
        ])
        .stdin(Stdio::null())
        .stdout(fs::File::create(&dom_path).unwrap())
        .stderr(fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run chromium ({e}): `cargo xtask setup` installs Debian's chromium")
        });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let dom = fs::read_to_string(&dom_path).unwrap();
    let log = fs::read_to_string(&log_path).unwrap_or_default();
    assert!(status.success(), "chromium {status}: {log}");
    let net = fs::read(&net_path).unwrap_or_else(|e| panic!("no network log from chromium: {e}"));
    Page {
        dom,
        log,
        requests: page_requests(&net),
    }
}

/// The URLs of the network log's requests made for a page: those whose isolation key or
/// cookie site names one (Chromium's own requests carry neither).
fn page_requests(net_log: &[u8]) -> Vec<String> {
    // A log Chromium was killed while writing ends without its closing brackets.
    let log: Value = serde_json::from_slice(net_log)
        .or_else(|_| {
            let mut fixed = net_log.to_vec();
            while fixed
                .last()
                .is_some_and(|b| b.is_ascii_whitespace() || *b == b',')
            {
                fixed.pop();
            }
            fixed.extend_from_slice(b"]}");
            serde_json::from_slice(&fixed)
        })
        .expect("chromium's network log is JSON");
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].as_i64();
    let mut urls = Vec::new();
    for event in log["events"].as_array().into_iter().flatten() {
        if event["type"].as_i64() != start_job {
            continue;
        }
        let params = &event["params"];
        let of_a_page = ["network_isolation_key", "site_for_cookies"]
            .iter()
            .any(|k| params[k].as_str().is_some_and(|v| v.contains("file://")));
        if of_a_page {
            if let Some(url) = params["url"].as_str() {
                urls.push(url.to_string());
            }
        }
    }
    urls
}
