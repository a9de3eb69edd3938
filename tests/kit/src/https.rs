//! A local HTTPS "provider" for the tests and benchmarks of `--verify`: no test ever calls a
//! real provider. [`ProviderServer::start`] makes a CA and a leaf certificate for the given
//! host names at run time (rcgen), listens on `127.0.0.1:0` on a thread of its own (tokio,
//! rustls with the ring provider, hyper's HTTP/1 server), records every request it receives
//! and answers each with what the test's handler says (404 until one is set).
//!
//! The binary is pointed at it with [`ProviderServer::resolve_args`]
//! (`--verify-resolve '*:443:127.0.0.1:PORT' --verify-ca CA.pem`), so that the real host name
//! is still what the client sends in SNI and in `Host`, and what the certificate must match.
//!
//! ```no_run
//! use detector_testkit::https::{ProviderServer, Reply};
//! let server = ProviderServer::start(&["api.github.com", "*.atlassian.net"]);
//! server.set_handler(|req| match req.path_and_query.as_str() {
//!     "/user" => Reply::json(200, r#"{"login":"octocat"}"#),
//!     _ => Reply::status(401),
//! });
//! let args = server.resolve_args(); // passed to `detector scan … --verify`
//! # drop(args);
//! assert!(server.requests().iter().all(|r| r.sni.is_some()));
//! ```
use std::{
    convert::Infallible,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, RwLock,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use http_body_util::{BodyExt, Full};
use hyper::{
    body::{Bytes, Incoming},
    service::service_fn,
    Request, Response,
};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::sync::oneshot;

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The server name the client sent in the TLS handshake.
    pub sni: Option<String>,
    pub method: String,
    /// The request target as sent (`/user?x=%2F`), not decoded.
    pub path_and_query: String,
    /// The `Host` header.
    pub host: Option<String>,
    /// Every header, names in lower case, in the order each name first came (the values of a
    /// repeated name together, in their order).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When its head had arrived.
    pub at: Instant,
}

impl Recorded {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the server answers to one request.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// How long to wait before answering (on top of the server's latency).
    pub delay: Duration,
}

impl Reply {
    /// `status` with no body.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// `status` with a JSON body (`Content-Type: application/json`).
    pub fn json(status: u16, body: impl Into<String>) -> Reply {
        Reply::status(status)
            .with_header("content-type", "application/json")
            .with_body(body.into().into_bytes())
    }

    /// `status` with a plain-text body.
    pub fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply::status(status)
            .with_header("content-type", "text/plain; charset=utf-8")
            .with_body(body.into().into_bytes())
    }

    /// The same reply with one more header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The same reply with this body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Reply {
        self.body = body.into();
        self
    }

    /// The same reply, sent `delay` after the request arrived (plus the server's latency).
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// rustls' *ring* provider, the only one this kit builds (no aws-lc anywhere). rustls 0.23.48
/// deprecates `ring::default_provider` for lacking post-quantum key exchange; a test server on
/// loopback has no use for it, and a client that prefers it falls back to X25519.
pub fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS client configuration trusting only `server`'s CA (for tests talking to it directly).
pub fn client_config(server: &ProviderServer) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.ca_der().clone()).expect("the server's CA");
    Arc::new(
        rustls::ClientConfig::builder_with_provider(ring_provider())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

type Handler = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync + 'static>;

struct State {
    handler: RwLock<Handler>,
    requests: Mutex<Vec<Recorded>>,
    /// Added to every reply's delay, in nanoseconds.
    latency_nanos: AtomicU64,
}

/// A local HTTPS server with its own CA, standing in for every provider; stops on drop.
pub struct ProviderServer {
    addr: SocketAddr,
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    ca_file: PathBuf,
    _dir: tempfile::TempDir,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ProviderServer {
    /// A new CA, a leaf certificate whose names are `hosts` (`*.example.com` allowed; an IP
    /// address becomes an IP name), and a server on `127.0.0.1:0` presenting it. Panics if any
    /// step fails: it is for tests.
    pub fn start(hosts: &[&str]) -> ProviderServer {
        assert!(
            !hosts.is_empty(),
            "a provider server needs at least one host"
        );
        // The CA.
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "detector test provider CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let ca_pem = ca_cert.pem();
        let ca_der = ca_cert.der().clone();
        let issuer = Issuer::new(ca_params, ca_key);
        // The leaf.
        let names: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let mut leaf_params = CertificateParams::new(names).expect("host names for a certificate");
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, hosts[0]);
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let leaf_key = KeyPair::generate().expect("leaf key");
        let leaf_cert = leaf_params
            .signed_by(&leaf_key, &issuer)
            .expect("leaf certificate");

        let mut config = rustls::ServerConfig::builder_with_provider(ring_provider())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf_cert.der().clone(), ca_der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )
            .expect("server certificate");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let dir = tempfile::Builder::new()
            .prefix("detector-provider-")
            .tempdir()
            .expect("temp dir");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &ca_pem).expect("write the CA");

        let state = Arc::new(State {
            handler: RwLock::new(Arc::new(|_: &Recorded| {
                Reply::json(404, r#"{"message":"Not Found"}"#)
            })),
            requests: Mutex::new(Vec::new()),
            latency_nanos: AtomicU64::new(0),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel();
        let thread_state = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("provider-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                runtime.block_on(serve(listener, acceptor, thread_state, stopped));
                // Dropping the runtime cancels the connections still open.
            })
            .expect("spawn the provider server");
        ProviderServer {
            addr,
            ca_pem,
            ca_der,
            ca_file,
            _dir: dir,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The same server, every reply delayed by `latency` more (a provider far away).
    pub fn with_latency(self, latency: Duration) -> ProviderServer {
        self.set_latency(latency);
        self
    }

    /// Delay every reply from now on by `latency` (on top of each reply's own delay).
    pub fn set_latency(&self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.state.latency_nanos.store(nanos, Ordering::Relaxed);
    }

    /// Answer every request from now on with what `handler` returns for it.
    pub fn set_handler(&self, handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) {
        *self
            .state
            .handler
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(handler);
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA certificate (PEM) in a file that lives as long as the server.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// `["--verify-resolve", "*:443:127.0.0.1:PORT", "--verify-ca", CA_FILE]`: every HTTPS
    /// request of `detector scan --verify` to any host on 443 goes here, and the CA is trusted.
    pub fn resolve_args(&self) -> Vec<String> {
        vec![
            "--verify-resolve".into(),
            format!("*:443:127.0.0.1:{}", self.port()),
            "--verify-ca".into(),
            self.ca_file.display().to_string(),
        ]
    }

    /// Every request received so far, in the order their heads arrived.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many requests were received so far.
    pub fn count(&self) -> usize {
        self.state
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Forget the requests received so far.
    pub fn clear(&self) {
        self.state
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

impl Drop for ProviderServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    state: Arc<State>,
    mut stopped: oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    loop {
        let tcp = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                // Out of descriptors or a connection reset before it was accepted: go on.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            // A failed handshake or a client gone mid-way ends this connection only.
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let sni = tls.get_ref().1.server_name().map(str::to_owned);
            let service = service_fn(move |request| {
                let state = Arc::clone(&state);
                let sni = sni.clone();
                async move { Ok::<_, Infallible>(answer(&state, sni, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

async fn answer(
    state: &State,
    sni: Option<String>,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let at = Instant::now();
    let (head, body) = request.into_parts();
    let headers: Vec<(String, String)> = head
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let host = head
        .headers
        .get(hyper::header::HOST)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(_) => Vec::new(),
    };
    let recorded = Recorded {
        sni,
        method: head.method.as_str().to_owned(),
        path_and_query: head
            .uri
            .path_and_query()
            .map_or_else(|| head.uri.to_string(), |p| p.as_str().to_owned()),
        host,
        headers,
        body,
        at,
    };
    state
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(recorded.clone());
    let handler = Arc::clone(&state.handler.read().unwrap_or_else(|e| e.into_inner()));
    let reply = handler(&recorded);
    let wait = reply.delay + Duration::from_nanos(state.latency_nanos.load(Ordering::Relaxed));
    if !wait.is_zero() {
        tokio::time::sleep_until((at + wait).into()).await;
    }
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(name.as_str(), value.as_str());
    }
    response
        .body(Full::new(Bytes::from(reply.body)))
        .unwrap_or_else(|e| {
            let mut bad = Response::new(Full::new(Bytes::from(format!(
                "the test's reply is not valid HTTP: {e}"
            ))));
            *bad.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            bad
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A TLS client trusting only the server's CA, connecting to its port with `host` as SNI;
    /// sends `request` and reads until the server closes (the request says `Connection: close`).
    fn fetch(server: &ProviderServer, host: &str, request: &str) -> String {
        let connector = tokio_rustls::TlsConnector::from(client_config(server));
        let name = rustls::pki_types::ServerName::try_from(host.to_owned()).unwrap();
        let port = server.port();
        let request = request.to_owned();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap();
                let mut tls = connector.connect(name, tcp).await.unwrap();
                tls.write_all(request.as_bytes()).await.unwrap();
                let mut out = Vec::new();
                let _ = tls.read_to_end(&mut out).await;
                String::from_utf8_lossy(&out).into_owned()
            })
    }

    #[test]
    fn a_request_over_tls_is_recorded_with_its_sni_path_and_headers() {
        let server = ProviderServer::start(&["api.github.com", "*.atlassian.net"]);
        let reply = fetch(
            &server,
            "api.github.com",
            "GET /user?q=a%2Fb HTTP/1.1\r\nHost: api.github.com\r\nAuthorization: Bearer t0k3n\r\n\
             X-Trace: 1\r\nX-Trace: 2\r\nConnection: close\r\n\r\n",
        );
        assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
        // A wildcard name is served too, and a body is recorded.
        server.set_handler(|r| Reply::json(200, format!(r#"{{"len":{}}}"#, r.body.len())));
        let reply = fetch(
            &server,
            "acme.atlassian.net",
            "POST /rest/api/3/myself HTTP/1.1\r\nHost: acme.atlassian.net\r\n\
             Content-Length: 5\r\nConnection: close\r\n\r\nhello",
        );
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.contains("content-type: application/json"), "{reply}");
        assert!(reply.ends_with(r#"{"len":5}"#), "{reply}");

        let seen = server.requests();
        assert_eq!(server.count(), 2);
        let first = &seen[0];
        assert_eq!(first.sni.as_deref(), Some("api.github.com"));
        assert_eq!(first.method, "GET");
        assert_eq!(first.path_and_query, "/user?q=a%2Fb");
        assert_eq!(first.host.as_deref(), Some("api.github.com"));
        assert_eq!(first.header("authorization"), Some("Bearer t0k3n"));
        let names: Vec<&str> = first.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["host", "authorization", "x-trace", "x-trace", "connection"]
        );
        assert_eq!(first.headers[3].1, "2");
        let second = &seen[1];
        assert_eq!(second.sni.as_deref(), Some("acme.atlassian.net"));
        assert_eq!(second.method, "POST");
        assert_eq!(second.body, b"hello");
        assert!(second.at >= first.at);
    }

    #[test]
    fn a_reply_is_sent_as_set_after_its_delay() {
        let server =
            ProviderServer::start(&["api.openai.com"]).with_latency(Duration::from_millis(20));
        server.set_handler(|_| {
            Reply::json(429, r#"{"error":"slow down"}"#)
                .with_header("Retry-After", "7")
                .after(Duration::from_millis(30))
        });
        let started = Instant::now();
        let reply = fetch(
            &server,
            "api.openai.com",
            "GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\nConnection: close\r\n\r\n",
        );
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(reply.starts_with("HTTP/1.1 429"), "{reply}");
        assert!(
            reply.to_ascii_lowercase().contains("retry-after: 7\r\n"),
            "{reply}"
        );
        assert!(reply.ends_with(r#"{"error":"slow down"}"#), "{reply}");
    }

    #[test]
    fn a_client_that_leaves_mid_way_does_not_stop_the_server() {
        let server = ProviderServer::start(&["api.github.com"]);
        server.set_handler(|_| Reply::status(204).after(Duration::from_millis(50)));
        // Plain TCP that sends garbage and leaves; then one that leaves before the reply.
        {
            use std::io::Write;
            let mut tcp = std::net::TcpStream::connect(server.addr()).unwrap();
            let _ = tcp.write_all(b"not tls at all\r\n\r\n");
        }
        let config = client_config(&server);
        let port = server.port();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let connector = tokio_rustls::TlsConnector::from(config);
                let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap();
                let name = rustls::pki_types::ServerName::try_from("api.github.com").unwrap();
                let mut tls = connector.connect(name, tcp).await.unwrap();
                tls.write_all(b"GET / HTTP/1.1\r\nHost: api.github.com\r\n\r\n")
                    .await
                    .unwrap();
                tls.flush().await.unwrap();
                // Gone before the 50 ms reply.
            });
        let reply = fetch(
            &server,
            "api.github.com",
            "GET /again HTTP/1.1\r\nHost: api.github.com\r\nConnection: close\r\n\r\n",
        );
        assert!(reply.starts_with("HTTP/1.1 204"), "{reply}");
        assert!(server
            .requests()
            .iter()
            .any(|r| r.path_and_query == "/again"));
    }

    #[test]
    fn connections_are_served_at_once() {
        let server =
            ProviderServer::start(&["api.github.com"]).with_latency(Duration::from_millis(200));
        server.set_handler(|_| Reply::json(200, "{}"));
        let started = Instant::now();
        std::thread::scope(|scope| {
            for i in 0..16 {
                let server = &server;
                scope.spawn(move || {
                    let reply = fetch(
                        server,
                        "api.github.com",
                        &format!("GET /{i} HTTP/1.1\r\nHost: api.github.com\r\nConnection: close\r\n\r\n"),
                    );
                    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
                });
            }
        });
        // 16 replies of 200 ms each, one after the other, would take 3.2 s.
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(server.count(), 16);
    }

    #[test]
    fn a_certificate_for_another_host_is_refused() {
        let server = ProviderServer::start(&["api.github.com"]);
        let config = client_config(&server);
        let port = server.port();
        let refused = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap();
                let name = rustls::pki_types::ServerName::try_from("api.stripe.com").unwrap();
                tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                    .is_err()
            });
        assert!(refused, "the leaf names only the hosts it was made for");
        assert_eq!(server.count(), 0);
    }

    #[test]
    fn the_resolve_arguments_name_the_port_and_the_ca() {
        let server = ProviderServer::start(&["api.github.com"]);
        let args = server.resolve_args();
        assert_eq!(args[0], "--verify-resolve");
        assert_eq!(args[1], format!("*:443:127.0.0.1:{}", server.port()));
        assert_eq!(args[2], "--verify-ca");
        let pem = std::fs::read_to_string(&args[3]).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(pem, server.ca_pem());
        let dir = server.ca_file().parent().unwrap().to_path_buf();
        drop(server);
        assert!(!dir.exists(), "the CA file goes with the server");
    }
}
