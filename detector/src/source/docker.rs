//! The local Docker daemon's Engine API, over its unix socket (`DOCKER_HOST=unix://…`
//! honoured; on Windows its named pipe, `npipe://…`), with no `docker` CLI: images (`docker:NAME[:TAG]`) and containers
//! (`container:NAME`, `containers:`, the agent's names of container processes).
//!
//! Paths carry the API version both sides speak, negotiated once per process: the daemon's
//! newest (`Api-Version` of `GET /_ping`), capped at [`CLIENT_API`]; a daemon too old for
//! versioned paths gets unversioned ones (Docker's documentation of API versioning:
//! <https://docs.docker.com/reference/api/engine/#api-version-matrix>).
//!
//! For an image, `GET /images/{name}/get` streams
//! what `docker save` would write, and [`save`] hands that stream on as it arrives, through a
//! small bounded queue: nothing of it is written to disk. Its `manifest.json` comes last, and
//! a layer's files can only be told hidden once the layers above it are known, so the image
//! is asked for twice (see [`super::stream`]): the first stream keeps only the metadata and
//! the paths and whiteouts of each layer, the second is scanned layer by layer.
use std::{
    io::{self, Read},
    path::{Path, PathBuf},
    sync::mpsc,
};

use http_body_util::{BodyExt, Empty};
use hyper::{
    body::{Bytes, Incoming},
    Request, StatusCode,
};
use hyper_util::rt::TokioIo;
use percent_encoding::AsciiSet;

use crate::{source::fs::io_reason, uri};

/// How this system's daemon listens: a unix socket, or on Windows a named pipe.
#[cfg(unix)]
mod endpoint {
    use std::{io, path::Path};

    pub const DEFAULT: &str = "/var/run/docker.sock";
    /// The `DOCKER_HOST` scheme of [`DEFAULT`]'s kind.
    pub const SCHEME: &str = "unix://";

    pub fn path(address: &str) -> std::path::PathBuf {
        address.into()
    }

    pub async fn connect(socket: &Path) -> io::Result<tokio::net::UnixStream> {
        tokio::net::UnixStream::connect(socket).await
    }
}

#[cfg(windows)]
mod endpoint {
    use std::{io, path::Path};

    use tokio::net::windows::named_pipe::{ClientOptions, NamedPipeClient};

    pub const DEFAULT: &str = r"\\.\pipe\docker_engine";
    pub const SCHEME: &str = "npipe://";

    /// `npipe:////./pipe/docker_engine` names `\\.\pipe\docker_engine`.
    pub fn path(address: &str) -> std::path::PathBuf {
        address.replace('/', "\\").into()
    }

    pub async fn connect(pipe: &Path) -> io::Result<NamedPipeClient> {
        ClientOptions::new().open(pipe)
    }
}

const DEFAULT_SOCKET: &str = endpoint::DEFAULT;

/// Chunks of the image stream (each what one read of the socket gave, some KiB) queued
/// ahead of the reader: bounds memory, keeps the socket busy while a layer is scanned.
const QUEUED_CHUNKS: usize = 64;

/// What went wrong talking to the daemon, said so that the user knows what to do.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("DOCKER_HOST={0} is not supported: only {scheme} sockets are", scheme = endpoint::SCHEME)]
    UnsupportedHost(String),
    #[error("cannot connect to the Docker daemon at {}: {reason} (is it running? DOCKER_HOST selects another socket)", socket.display())]
    Connect { socket: PathBuf, reason: String },
    #[error("Docker daemon at {}: {reason}", socket.display())]
    Protocol { socket: PathBuf, reason: String },
    #[error("{message} (Docker daemon at {})", socket.display())]
    NotFound { socket: PathBuf, message: String },
    #[error("the Docker daemon answered {status}: {message}")]
    Refused { status: StatusCode, message: String },
    #[error("the image stream from the Docker daemon broke: {0}")]
    Broken(String),
    #[error("the Docker daemon's image list is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("the Docker daemon's answer was lost")]
    Lost,
    #[error("cannot start {what}: {reason}")]
    Local { what: &'static str, reason: String },
}

/// The daemon's socket: `$DOCKER_HOST` when it is a `unix://` address, else the default.
pub fn socket() -> Result<PathBuf, DaemonError> {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.is_empty() => match host.strip_prefix(endpoint::SCHEME) {
            Some(path) => Ok(endpoint::path(path)),
            None => Err(DaemonError::UnsupportedHost(host)),
        },
        _ => Ok(PathBuf::from(DEFAULT_SOCKET)),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, DaemonError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DaemonError::Local {
            what: "an I/O runtime",
            reason: io_reason(&e),
        })
}

/// The local daemon's images by tag (by id when untagged), one name per image, from
/// `GET /images/json`.
pub fn images() -> Result<Vec<String>, DaemonError> {
    let socket = socket()?;
    let body = runtime()?.block_on(async {
        let (body, driver) = get(&socket, "/images/json").await?;
        whole(&socket, body, driver).await
    })?;
    image_names(&body)
}

/// The newest API version this client asks for; every call it makes exists since 1.24.
pub const CLIENT_API: (u32, u32) = (1, 43);

/// `GET path` (an API path, unversioned: `/containers/json?all=1`) and its JSON answer.
pub fn get_json<T: serde::de::DeserializeOwned>(path: &str) -> Result<T, DaemonError> {
    let socket = socket()?;
    let body = runtime()?.block_on(async {
        let (body, driver) = get(&socket, path).await?;
        whole(&socket, body, driver).await
    })?;
    Ok(serde_json::from_slice(&body)?)
}

/// A body read to its end, and the connection closed.
async fn whole(
    socket: &Path,
    body: Incoming,
    driver: tokio::task::JoinHandle<hyper::Result<()>>,
) -> Result<Bytes, DaemonError> {
    let bytes = body
        .collect()
        .await
        .map_err(|e| DaemonError::Protocol {
            socket: socket.to_path_buf(),
            reason: e.to_string(),
        })?
        .to_bytes();
    driver.abort();
    Ok(bytes)
}

/// `/vX.Y` for the version negotiated with the daemon at `socket` (asked once per process
/// and socket), or nothing for a daemon that does not say.
async fn version_prefix(socket: &Path) -> String {
    static NEGOTIATED: std::sync::Mutex<Vec<(PathBuf, String)>> = std::sync::Mutex::new(Vec::new());
    let known = NEGOTIATED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .find(|(s, _)| s == socket)
        .map(|(_, prefix)| prefix.clone());
    if let Some(prefix) = known {
        return prefix;
    }
    let prefix = match request(socket, "/_ping").await {
        Ok((response, driver)) => {
            driver.abort();
            response
                .headers()
                .get("api-version")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_version)
                .map(|server| {
                    let (major, minor) = server.min(CLIENT_API);
                    format!("/v{major}.{minor}")
                })
                .unwrap_or_default()
        }
        Err(_) => String::new(),
    };
    NEGOTIATED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push((socket.to_path_buf(), prefix.clone()));
    prefix
}

/// `1.41` as numbers, so that 1.9 < 1.10.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn image_names(body: &[u8]) -> Result<Vec<String>, DaemonError> {
    let images: Vec<serde_json::Value> = serde_json::from_slice(body)?;
    let mut names = Vec::new();
    for image in &images {
        let tags: Vec<String> = image["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str())
            .filter(|t| *t != "<none>:<none>")
            .map(str::to_string)
            .collect();
        match (tags.first(), image["Id"].as_str()) {
            // One name per image: its tags share the same layers.
            (Some(tag), _) => names.push(tag.clone()),
            (None, Some(id)) => names.push(id.to_string()),
            (None, None) => {}
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// That the daemon has the image: a missing one gets a clear 404 here, rather than a broken
/// stream from [`save`].
pub fn inspect(name: &str) -> Result<(), DaemonError> {
    let socket = socket()?;
    runtime()?.block_on(async {
        let (_, driver) = get(&socket, &format!("/images/{}/json", escape(name)))
            .await
            .map_err(|err| match err {
                DaemonError::NotFound { socket, .. } => DaemonError::NotFound {
                    socket,
                    message: "no such image".to_string(),
                },
                other => other,
            })?;
        driver.abort();
        Ok(())
    })
}

/// `docker save NAME`, as a stream read while the daemon writes it.
pub fn save(name: &str) -> Result<SaveStream, DaemonError> {
    let socket = socket()?;
    let path = format!("/images/{}/get", escape(name));
    let runtime = runtime()?;
    let (head_sender, head) = mpsc::sync_channel::<Result<(), DaemonError>>(1);
    let (sender, chunks) = mpsc::sync_channel::<Result<Bytes, DaemonError>>(QUEUED_CHUNKS);
    std::thread::Builder::new()
        .name("docker-save".to_string())
        .spawn(move || {
            runtime.block_on(async move {
                let (mut body, driver) = match get(&socket, &path).await {
                    Ok(answer) => answer,
                    Err(err) => {
                        let _ = head_sender.send(Err(err));
                        return;
                    }
                };
                let _ = head_sender.send(Ok(()));
                while let Some(frame) = body.frame().await {
                    let chunk = match frame {
                        Ok(frame) => match frame.into_data() {
                            Ok(data) => Ok(data),
                            Err(_) => continue, // trailers
                        },
                        Err(e) => Err(DaemonError::Broken(e.to_string())),
                    };
                    let broke = chunk.is_err();
                    // Blocks while the queue is full; fails once the reader is gone.
                    if sender.send(chunk).is_err() || broke {
                        break;
                    }
                }
                driver.abort();
            })
        })
        .map_err(|e| DaemonError::Local {
            what: "a thread",
            reason: io_reason(&e),
        })?;
    head.recv().map_err(|_| DaemonError::Lost)??;
    Ok(SaveStream {
        chunks,
        current: Bytes::new(),
    })
}

/// The body of `GET /images/{name}/get`, read as it arrives. Dropping it ends the request.
pub struct SaveStream {
    chunks: mpsc::Receiver<Result<Bytes, DaemonError>>,
    current: Bytes,
}

impl Read for SaveStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.recv() {
                Ok(Ok(chunk)) => self.current = chunk,
                Ok(Err(err)) => return Err(io::Error::other(err)),
                // The sender is gone: the body ended.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// GET `path` (unversioned; the negotiated version is put in front): the body of a 200
/// answer, and the task driving the connection (to abort when done with the body). Errors name
/// the socket and say what the daemon answered.
async fn get(
    socket: &Path,
    path: &str,
) -> Result<(Incoming, tokio::task::JoinHandle<hyper::Result<()>>), DaemonError> {
    let versioned = format!("{}{path}", version_prefix(socket).await);
    let (response, driver) = request(socket, &versioned).await?;
    let status = response.status();
    let body = response.into_body();
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
            StatusCode::NOT_FOUND => DaemonError::NotFound {
                socket: socket.to_path_buf(),
                message,
            },
            _ => DaemonError::Refused { status, message },
        });
    }
    Ok((body, driver))
}

/// Send `GET path` as is; the answer whatever its status.
async fn request(
    socket: &Path,
    path: &str,
) -> Result<
    (
        hyper::Response<Incoming>,
        tokio::task::JoinHandle<hyper::Result<()>>,
    ),
    DaemonError,
> {
    let protocol = |reason: String| DaemonError::Protocol {
        socket: socket.to_path_buf(),
        reason,
    };
    let stream = endpoint::connect(socket)
        .await
        .map_err(|e| DaemonError::Connect {
            socket: socket.to_path_buf(),
            reason: io_reason(&e),
        })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| protocol(e.to_string()))?;
    let driver = tokio::spawn(connection);
    let request = Request::get(path)
        .header(hyper::header::HOST, "docker")
        .body(Empty::<Bytes>::new())
        .map_err(|e| protocol(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| protocol(e.to_string()))?;
    Ok((response, driver))
}

/// What an image reference keeps in a URL path: RFC 3986's unreserved characters, and `/`,
/// `:` and `@`, as the daemon routes `/images/{name:.*}/get`.
const REFERENCE: &AsciiSet = &uri::PATH.remove(b':').remove(b'@');

fn escape(name: &str) -> String {
    uri::encode(name, REFERENCE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_prefer_tags() {
        let body = br#"[{"Id":"sha256:aa","RepoTags":["app:prod","app:latest"]},
                        {"Id":"sha256:bb","RepoTags":["<none>:<none>"]},
                        {"Id":"sha256:cc"}]"#;
        assert_eq!(
            image_names(body).unwrap(),
            ["app:prod", "sha256:bb", "sha256:cc"]
        );
    }

    #[test]
    fn versions_compare_as_numbers() {
        assert_eq!(parse_version("1.41"), Some((1, 41)));
        assert!(parse_version("1.9").unwrap() < parse_version("1.10").unwrap());
        assert_eq!(parse_version("1.51").unwrap().min(CLIENT_API), CLIENT_API);
        assert_eq!(parse_version("x"), None);
    }

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
            .block_on(get(&socket, "/images/x/json"))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot connect to the Docker daemon"), "{err}");
        assert!(err.contains("docker.sock"), "{err}");
    }
}
