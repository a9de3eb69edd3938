//! The HTTPS client that sends verifier requests: rustls with the system's roots (plus
//! `--verify-ca`), `HTTPS_PROXY` honoured, no redirects, https only, answers read up to a
//! bound. `--verify-resolve HOST:PORT:ADDR[:ADDRPORT]` (curl's `--resolve`; HOST may be `*`)
//! sends a host's requests elsewhere while the hostname, SNI, path and headers stay real:
//! how the tests reach their local server.
use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use super::render::Request;

/// The most of an answer's body that is read: enough for any "who am I".
const MAX_BODY: usize = 256 * 1024;

/// One `--verify-resolve` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolve {
    /// A hostname, or `*` for every host.
    pub host: String,
    pub port: u16,
    pub addr: SocketAddr,
}

impl std::str::FromStr for Resolve {
    type Err = String;

    /// `HOST:PORT:ADDR` or `HOST:PORT:ADDR:ADDRPORT`; an IPv6 ADDR in brackets.
    fn from_str(text: &str) -> Result<Resolve, String> {
        let usage = || format!("{text:?}: expected HOST:PORT:ADDR[:ADDRPORT]");
        let (host, rest) = text.split_once(':').ok_or_else(usage)?;
        let (port, addr) = rest.split_once(':').ok_or_else(usage)?;
        let port: u16 = port.parse().map_err(|_| usage())?;
        let addr = match addr.parse::<SocketAddr>() {
            Ok(addr) => addr,
            Err(_) => {
                let bare = addr.trim_start_matches('[').trim_end_matches(']');
                SocketAddr::new(bare.parse::<IpAddr>().map_err(|_| usage())?, port)
            }
        };
        if host.is_empty() {
            return Err(usage());
        }
        Ok(Resolve {
            host: host.to_ascii_lowercase(),
            port,
            addr,
        })
    }
}

/// How the client is built.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    pub resolve: Vec<Resolve>,
    /// Extra CA certificates (PEM), for a corporate proxy or a test server.
    pub extra_ca: Option<PathBuf>,
    /// Per request.
    pub timeout: Duration,
}

/// An answer, its body cut at [`MAX_BODY`].
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why no answer came; never holds a URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("timed out")]
    Timeout,
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("request failed: {0}")]
    Failed(String),
}

#[derive(Clone)]
pub struct Client {
    inner: reqwest::Client,
}

impl Client {
    pub fn new(options: &ClientOptions) -> anyhow::Result<Client> {
        let mut builder = reqwest::Client::builder()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            .user_agent(concat!("detector/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(4);
        if let Some(path) = &options.extra_ca {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("--verify-ca {}: {e}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| anyhow::anyhow!("--verify-ca {}: {e}", path.display()))?;
            if certs.is_empty() {
                anyhow::bail!("--verify-ca {}: no PEM certificate in it", path.display());
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if !options.resolve.is_empty() {
            builder = builder.dns_resolver(Arc::new(Overrides(options.resolve.clone())));
        }
        let inner = builder
            .build()
            .map_err(|e| anyhow::anyhow!("cannot set up HTTPS: {}", cause(&e)))?;
        Ok(Client { inner })
    }

    /// Send `request`; a transport failure says what failed, never where to.
    pub async fn send(&self, request: &Request) -> Result<Response, SendError> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| SendError::Failed("bad method".into()))?;
        let mut builder = self.inner.request(method, &request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if !request.body.is_empty() {
            builder = builder.body(request.body.clone());
        }
        let mut response = builder.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        while body.len() < MAX_BODY {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_BODY - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) => break,
                Err(e) => return Err(classify(e)),
            }
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

fn classify(error: reqwest::Error) -> SendError {
    let error = error.without_url();
    if error.is_timeout() {
        SendError::Timeout
    } else if error.is_connect() {
        SendError::Connect(cause(&error))
    } else {
        SendError::Failed(cause(&error))
    }
}

/// The innermost cause: what went wrong (refused, certificate unknown), without the layers
/// that name the request.
pub(super) fn cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut inner: &(dyn std::error::Error + 'static) = error;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

/// `--verify-resolve` over the system resolver.
struct Overrides(Vec<Resolve>);

impl reqwest::dns::Resolve for Overrides {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_ascii_lowercase();
        // Verifier URLs carry no port: every request goes to 443.
        let found: Vec<SocketAddr> = self
            .0
            .iter()
            .filter(|r| r.port == 443 && (r.host == "*" || r.host == host))
            .map(|r| r.addr)
            .collect();
        Box::pin(async move {
            if !found.is_empty() {
                let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
                return Ok(addrs);
            }
            let resolved = tokio::net::lookup_host((host.as_str(), 443))
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            let addrs: reqwest::dns::Addrs = Box::new(resolved.collect::<Vec<_>>().into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_entries_parse_like_curl() {
        let r: Resolve = "*:443:127.0.0.1:40123".parse().unwrap();
        assert_eq!(r.host, "*");
        assert_eq!(r.addr, "127.0.0.1:40123".parse().unwrap());
        let r: Resolve = "API.github.com:443:10.0.0.1".parse().unwrap();
        assert_eq!(r.host, "api.github.com");
        assert_eq!(r.addr, "10.0.0.1:443".parse().unwrap());
        let r: Resolve = "h:443:[::1]:8443".parse().unwrap();
        assert_eq!(r.addr, "[::1]:8443".parse().unwrap());
        assert!("h:x:1.2.3.4".parse::<Resolve>().is_err());
        assert!("h:443".parse::<Resolve>().is_err());
    }
}
