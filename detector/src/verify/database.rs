//! Database URLs under `--verify-network`: a real login attempt with the URL found next to the
//! password, since such URLs point at private hosts that no verifier data can name. Only a
//! login is tried: no query is run. PostgreSQL through tokio-postgres (its own protocol
//! implementation; a server that refuses the password answers SQLSTATE 28P01), Redis by its
//! documented `AUTH` command.
use std::time::Duration;

use chrono::Utc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::{Candidate, Plan, State, Verification};
use crate::audit::Key;

const POSTGRES: &str = "postgres-url-password";
const REDIS: &str = "redis-url-password";

/// How long a login may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The URL each database rule's password needs: the nearest URL of its scheme.
pub const NEEDS: &[(&str, &str, &str)] = &[
    (
        POSTGRES,
        "postgres_url",
        r#"(?i)\b((?:postgres|postgresql)://[^\s"'<>`]+)"#,
    ),
    (REDIS, "redis_url", r#"(?i)\b(redis://[^\s"'<>`]+)"#),
];

/// Whether keys of `rule` are database passwords this module can try.
pub fn handles(rule: &str) -> bool {
    rule == POSTGRES || rule == REDIS
}

/// A login attempt with the key's URL, when its rule is a database's: `None` for other rules.
pub fn verify(key: &Key, candidate: Option<&Candidate>, plan: &Plan) -> Option<Verification> {
    if !handles(&key.rule) {
        return None;
    }
    if !plan.network {
        return Some(Verification::unknown(
            "a database login is tried only with --verify-network",
            None,
        ));
    }
    let verifier = Some(key.rule.as_str());
    let need = if key.rule == POSTGRES {
        "postgres_url"
    } else {
        "redis_url"
    };
    let Some(url) = candidate.and_then(|c| {
        let url = c.needs.get(need)?;
        url.contains(c.secret.as_str()).then_some(url)
    }) else {
        return Some(Verification::unknown(
            "no database URL holding the password was found next to it",
            verifier,
        ));
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return Some(Verification::unknown(e.to_string(), verifier)),
    };
    let attempt = async {
        if key.rule == POSTGRES {
            postgres(url).await
        } else {
            redis(url).await
        }
    };
    let (state, detail) =
        match runtime.block_on(async { tokio::time::timeout(TIMEOUT, attempt).await }) {
            Ok(said) => said,
            Err(_) => (
                State::Unknown,
                "the database did not answer in time".to_string(),
            ),
        };
    Some(Verification {
        state,
        checked_at: Utc::now(),
        detail,
        verifier: verifier.map(str::to_string),
        cached: false,
    })
}

async fn postgres(url: &str) -> (State, String) {
    let config: tokio_postgres::Config = match url.parse() {
        Ok(config) => config,
        Err(_) => return (State::Unknown, "the URL does not parse".into()),
    };
    let user = config.get_user().unwrap_or("").to_string();
    let place = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            // (Unix sockets exist only on Unix, and so does this variant.)
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_default();
    match config.connect(tokio_postgres::NoTls).await {
        Ok((client, connection)) => {
            drop(client);
            drop(connection);
            (State::Active, format!("logged in as {user} at {place}"))
        }
        Err(e) => match e.code() {
            Some(code) if *code == tokio_postgres::error::SqlState::INVALID_PASSWORD => (
                State::Revoked,
                format!("{place} refused the password of {user}"),
            ),
            Some(code) => (
                State::Unknown,
                format!("{place} refused the login (SQLSTATE {})", code.code()),
            ),
            None => (
                State::Unknown,
                format!("cannot log in at {place}: {}", super::client::cause(&e)),
            ),
        },
    }
}

/// `redis://[user]:password@host[:port][/db]`: `AUTH [user] password`.
async fn redis(url: &str) -> (State, String) {
    let Some(rest) = url.get("redis://".len()..) else {
        return (State::Unknown, "the URL does not parse".into());
    };
    let Some((userinfo, hostpart)) = rest.rsplit_once('@') else {
        return (State::Unknown, "the URL has no password".into());
    };
    let hostport = hostpart.split(['/', '?']).next().unwrap_or("");
    let (user, password) = userinfo.split_once(':').unwrap_or(("", userinfo));
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let (user, password) = (decode(user), decode(password));
    let target = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:6379")
    };
    let stream = match tokio::net::TcpStream::connect(&target).await {
        Ok(stream) => stream,
        Err(e) => return (State::Unknown, format!("cannot connect to {target}: {e}")),
    };
    let (read, mut write) = stream.into_split();
    let mut args: Vec<&str> = vec!["AUTH"];
    if !user.is_empty() {
        args.push(&user);
    }
    args.push(&password);
    let mut command = format!("*{}\r\n", args.len());
    for arg in &args {
        command.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    if let Err(e) = write.write_all(command.as_bytes()).await {
        return (State::Unknown, format!("cannot talk to {target}: {e}"));
    }
    let mut reply = String::new();
    let mut reader = BufReader::new(read.take(512));
    if let Err(e) = reader.read_line(&mut reply).await {
        return (State::Unknown, format!("no answer from {target}: {e}"));
    }
    let reply = reply.trim_end();
    if reply == "+OK" {
        (State::Active, format!("logged in at {target}"))
    } else if reply.starts_with("-WRONGPASS") || reply.starts_with("-ERR invalid password") {
        (State::Revoked, format!("{target} refused the password"))
    } else {
        let first = reply.split_whitespace().next().unwrap_or("");
        (State::Unknown, format!("{target} answered {first}"))
    }
}
