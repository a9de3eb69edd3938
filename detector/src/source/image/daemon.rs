//! `docker:NAME[:TAG]`: the image straight from the local Docker daemon, over its unix socket
//! (`DOCKER_HOST=unix://…` honoured), with no `docker` CLI. `GET /images/{name}/get` streams
//! what `docker save` would write; its `manifest.json` comes last, and layers must be read
//! from the top down, so the stream goes to an unlinked temporary file first and is then
//! read like a `docker-archive:`.
use std::{
    fs::File,
    io::Write,
    path::{Path, PathBuf},
};

use http_body_util::{BodyExt, Empty};
use hyper::{body::Bytes, Request, StatusCode};
use hyper_util::rt::TokioIo;

use crate::source::fs::io_reason;

const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// The daemon's socket: `$DOCKER_HOST` when it is a `unix://` address, else the default.
pub fn socket() -> Result<PathBuf, String> {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.is_empty() => match host.strip_prefix("unix://") {
            Some(path) => Ok(PathBuf::from(path)),
            None => Err(format!(
                "DOCKER_HOST={host} is not supported: only unix:// sockets are"
            )),
        },
        _ => Ok(PathBuf::from(DEFAULT_SOCKET)),
    }
}

/// `docker save NAME` into an unlinked temporary file.
pub fn save(name: &str) -> Result<File, String> {
    let socket = socket()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start an I/O runtime: {}", io_reason(&e)))?;
    runtime.block_on(async {
        // Inspect first: a missing image gets a clear 404 rather than a broken stream.
        get(&socket, &format!("/images/{}/json", escape(name)), None).await?;
        let mut spool = super::store::temp_file()?;
        get(
            &socket,
            &format!("/images/{}/get", escape(name)),
            Some(&mut spool),
        )
        .await?;
        Ok(spool)
    })
}

/// GET `path`; the body goes to `into` (streamed) or is dropped. Errors name the socket and
/// say what the daemon answered.
async fn get(socket: &Path, path: &str, into: Option<&mut File>) -> Result<(), String> {
    let stream = tokio::net::UnixStream::connect(socket).await.map_err(|e| {
        format!(
            "cannot connect to the Docker daemon at {}: {} (is it running? DOCKER_HOST selects another socket)",
            socket.display(),
            io_reason(&e)
        )
    })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("Docker daemon at {}: {e}", socket.display()))?;
    let driver = tokio::spawn(connection);
    let request = Request::get(path)
        .header(hyper::header::HOST, "docker")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("Docker daemon at {}: {e}", socket.display()))?;
    let status = response.status();
    let mut body = response.into_body();
    if status != StatusCode::OK {
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let message = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("message")?.as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_string());
        driver.abort();
        return Err(match status {
            StatusCode::NOT_FOUND => {
                format!("no such image in the Docker daemon at {}", socket.display())
            }
            _ => format!("the Docker daemon answered {status}: {message}"),
        });
    }
    if let Some(file) = into {
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| format!("the image stream from the Docker daemon broke: {e}"))?;
            if let Some(data) = frame.data_ref() {
                file.write_all(data)
                    .map_err(|e| format!("cannot write the temporary copy: {}", io_reason(&e)))?;
            }
        }
    }
    driver.abort();
    Ok(())
}

/// Percent-encode an image reference for a URL path; `/`, `:` and `@` stay, as the daemon
/// routes `/images/{name:.*}/get`.
fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/:@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_escaped_for_the_path() {
        assert_eq!(escape("registry:5000/app:prod"), "registry:5000/app:prod");
        assert_eq!(escape("a b?c"), "a%20b%3Fc");
    }

    #[test]
    fn a_missing_daemon_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = runtime
            .block_on(get(&socket, "/images/x/json", None))
            .unwrap_err();
        assert!(err.contains("cannot connect to the Docker daemon"), "{err}");
        assert!(err.contains("docker.sock"), "{err}");
    }
}
