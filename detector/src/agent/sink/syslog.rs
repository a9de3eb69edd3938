//! Records to syslog: RFC 5424 messages over a unix datagram socket (`/dev/log`), UDP
//! (RFC 5426) or TCP with octet-counting framing (RFC 6587 §3.4.1).
//!
//! The message is the record's JSON line, unchanged, so a collector can verify the chain
//! too; APP-NAME is `detector`, MSGID the record type, and the structured data repeats `seq`
//! for collectors that filter without parsing JSON. Delivery runs on a thread per
//! destination behind a bounded queue: a slow or absent collector never stalls the agent's
//! event loop (which would fill the kernel ring buffer). What cannot be delivered is counted
//! and said on standard error; the events file, if any, still has every record.
use std::{
    fmt,
    io::{self, Write},
    net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket},
    os::unix::net::UnixDatagram,
    path::PathBuf,
    str::FromStr,
    sync::{
        mpsc::{self, Receiver, SyncSender, TrySendError},
        Arc,
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;

use super::SinkError;
use crate::event::{CanaryState, Verdict};

const APP_NAME: &str = "detector";
/// The structured-data ID. 32473 is the private enterprise number reserved for
/// documentation (RFC 5612): this project has none of its own.
const SD_ID: &str = "detector@32473";
/// Records waiting for a destination before new ones are dropped (and counted).
const QUEUE: usize = 4096;
const IO_TIMEOUT: Duration = Duration::from_secs(2);
const RECONNECT_AFTER: Duration = Duration::from_secs(5);

/// `unix:PATH`, `udp:HOST:PORT` or `tcp:HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Unix(PathBuf),
    Udp(String),
    Tcp(String),
}

impl FromStr for Destination {
    type Err = SinkError;

    fn from_str(s: &str) -> Result<Destination, SinkError> {
        let usage = || SinkError::SyslogUsage(s.to_string());
        let (scheme, rest) = s.split_once(':').ok_or_else(usage)?;
        let host_port = |rest: &str| -> Result<String, SinkError> {
            let (host, port) = rest.rsplit_once(':').ok_or_else(usage)?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(usage());
            }
            Ok(rest.to_string())
        };
        match scheme {
            "unix" if !rest.is_empty() => Ok(Destination::Unix(rest.into())),
            "udp" => Ok(Destination::Udp(host_port(rest)?)),
            "tcp" => Ok(Destination::Tcp(host_port(rest)?)),
            _ => Err(usage()),
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Unix(path) => write!(f, "unix:{}", path.display()),
            Destination::Udp(address) => write!(f, "udp:{address}"),
            Destination::Tcp(address) => write!(f, "tcp:{address}"),
        }
    }
}

/// Why a destination cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("{0} resolves to no address")]
    NoAddress(String),
}

/// A syslog facility code (RFC 5424 §6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facility(pub u8);

/// RFC 5424 severities used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Severity {
    Warning = 4,
    Info = 6,
}

/// Turns a record's line into an RFC 5424 message.
pub struct Formatter {
    facility: Facility,
    hostname: String,
    procid: u32,
}

impl Formatter {
    pub fn new(facility: Facility) -> Formatter {
        Formatter {
            facility,
            hostname: hostname(),
            procid: std::process::id(),
        }
    }

    /// `<PRI>1 TIMESTAMP HOSTNAME detector PROCID TYPE [detector@32473 seq="N"] LINE`. The
    /// message has no BOM (MSG-ANY): collectors and shippers keep the JSON as it is.
    pub fn format(&self, time: DateTime<Utc>, seq: u64, line: &[u8]) -> Arc<[u8]> {
        let head = Head::of(line);
        let pri = u16::from(self.facility.0) * 8 + head.severity() as u16;
        let msgid = head
            .kind
            .filter(|k| !k.is_empty() && k.len() <= 32 && k.bytes().all(printable))
            .unwrap_or("-");
        // TIME-SECFRAC has at most six digits.
        let timestamp = time.to_rfc3339_opts(SecondsFormat::Micros, true);
        let mut message = format!(
            "<{pri}>1 {timestamp} {} {APP_NAME} {} {msgid} [{SD_ID} seq=\"{seq}\"] ",
            self.hostname, self.procid
        )
        .into_bytes();
        message.extend_from_slice(line);
        message.into()
    }
}

/// What the severity depends on, read back from the line itself so that new record types
/// need no change here.
#[derive(Deserialize, Default)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a str>,
    verdict: Option<Verdict>,
    canary: Option<CanaryState>,
}

impl<'a> Head<'a> {
    fn of(line: &'a [u8]) -> Head<'a> {
        serde_json::from_slice(line).unwrap_or_default()
    }

    /// Alerts are warnings, and so are the records that say the agent may have missed
    /// something: lost events and downtime (`gap`), a broken pipeline (canary missed).
    fn severity(&self) -> Severity {
        if self.verdict == Some(Verdict::Alert)
            || self.kind == Some("gap")
            || self.canary == Some(CanaryState::Missed)
        {
            Severity::Warning
        } else {
            Severity::Info
        }
    }
}

fn printable(b: u8) -> bool {
    (33..=126).contains(&b)
}

/// HOSTNAME: this host's name when it is printable ASCII, else the NILVALUE.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer and its length are valid; gethostname NUL-terminates when it fits.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    let len = buf.iter().position(|&b| b == 0).unwrap_or(0);
    let name = &buf[..len];
    if rc == 0 && !name.is_empty() && name.iter().copied().all(printable) {
        String::from_utf8_lossy(name).into_owned()
    } else {
        "-".to_string()
    }
}

/// One destination: a queue and the thread that delivers from it.
pub struct Sender {
    destination: Destination,
    queue: Option<SyncSender<Arc<[u8]>>>,
    thread: Option<JoinHandle<()>>,
    full: bool,
}

impl Sender {
    /// Connects at once, so that a wrong address fails the start instead of every record.
    pub fn start(destination: &Destination) -> Result<Sender, SinkError> {
        let connection =
            Connection::open(destination).map_err(|error| SinkError::SyslogUnreachable {
                destination: destination.clone(),
                error,
            })?;
        let (queue, receiver) = mpsc::sync_channel(QUEUE);
        let mut delivery = Delivery {
            destination: destination.clone(),
            connection: Some(connection),
            retry_at: Instant::now(),
            undelivered: 0,
        };
        let thread = thread::Builder::new()
            .name("syslog".into())
            .spawn(move || delivery.run(receiver))
            .map_err(SinkError::SyslogThread)?;
        Ok(Sender {
            destination: destination.clone(),
            queue: Some(queue),
            thread: Some(thread),
            full: false,
        })
    }

    pub fn send(&mut self, message: Arc<[u8]>) {
        let Some(queue) = &self.queue else { return };
        match queue.try_send(message) {
            Ok(()) => self.full = false,
            Err(TrySendError::Full(_)) => {
                if !self.full {
                    tracing::warn!(
                        "syslog {}: {QUEUE} records waiting; dropping records until it catches up",
                        self.destination
                    );
                }
                self.full = true;
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

impl Drop for Sender {
    /// Delivers what is queued (the final heartbeat among it), then stops.
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Delivery {
    destination: Destination,
    connection: Option<Connection>,
    retry_at: Instant,
    /// Records not delivered since the last one that was.
    undelivered: u64,
}

impl Delivery {
    fn run(&mut self, receiver: Receiver<Arc<[u8]>>) {
        while let Ok(message) = receiver.recv() {
            self.deliver(&message);
        }
        if self.undelivered > 0 {
            tracing::warn!(
                "syslog {}: {} records were not delivered",
                self.destination,
                self.undelivered
            );
        }
    }

    fn deliver(&mut self, message: &[u8]) {
        // A second try on a fresh connection: the collector may have restarted.
        for _ in 0..2 {
            if self.connection.is_none() {
                if Instant::now() < self.retry_at {
                    break;
                }
                match Connection::open(&self.destination) {
                    Ok(connection) => self.connection = Some(connection),
                    Err(err) => {
                        self.retry_at = Instant::now() + RECONNECT_AFTER;
                        self.failed(&err);
                        break;
                    }
                }
            }
            let connection = self.connection.as_mut().expect("connected above");
            match connection.send(message) {
                Ok(()) => {
                    if self.undelivered > 0 {
                        tracing::warn!(
                            "syslog {}: delivering again after {} records were not delivered",
                            self.destination,
                            self.undelivered
                        );
                        self.undelivered = 0;
                    }
                    return;
                }
                Err(err) => {
                    self.connection = None;
                    self.failed(&err);
                }
            }
        }
        self.undelivered += 1;
    }

    fn failed(&self, err: &dyn fmt::Display) {
        if self.undelivered == 0 {
            tracing::warn!("syslog {}: {err}", self.destination);
        }
    }
}

enum Connection {
    Datagram(UnixDatagram),
    Udp(UdpSocket),
    Tcp(TcpStream),
}

impl Connection {
    fn open(destination: &Destination) -> Result<Connection, ConnectError> {
        match destination {
            Destination::Unix(path) => {
                let socket = UnixDatagram::unbound()?;
                socket.connect(path)?;
                socket.set_write_timeout(Some(IO_TIMEOUT))?;
                Ok(Connection::Datagram(socket))
            }
            Destination::Udp(address) => {
                let address = resolve(address)?;
                let local: SocketAddr = if address.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    ([0u16; 8], 0).into()
                };
                let socket = UdpSocket::bind(local)?;
                socket.connect(address)?;
                Ok(Connection::Udp(socket))
            }
            Destination::Tcp(address) => {
                let stream = TcpStream::connect_timeout(&resolve(address)?, IO_TIMEOUT)?;
                stream.set_write_timeout(Some(IO_TIMEOUT))?;
                Ok(Connection::Tcp(stream))
            }
        }
    }

    fn send(&mut self, message: &[u8]) -> io::Result<()> {
        match self {
            Connection::Datagram(socket) => socket.send(message).map(drop),
            Connection::Udp(socket) => socket.send(message).map(drop),
            Connection::Tcp(stream) => {
                // Octet counting: `LEN SP MSG`, so a message may hold any byte. One write per
                // frame; a frame cut short by an error drops the connection with it.
                let mut frame = format!("{} ", message.len()).into_bytes();
                frame.extend_from_slice(message);
                stream.write_all(&frame)
            }
        }
    }
}

fn resolve(address: &str) -> Result<SocketAddr, ConnectError> {
    match address.to_socket_addrs()?.next() {
        Some(address) => Ok(address),
        None => Err(ConnectError::NoAddress(address.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse_and_print() {
        for text in [
            "unix:/dev/log",
            "udp:127.0.0.1:514",
            "tcp:[::1]:6514",
            "tcp:logs.example:601",
        ] {
            assert_eq!(text.parse::<Destination>().unwrap().to_string(), text);
        }
        for bad in [
            "",
            "/dev/log",
            "udp:host",
            "tcp::514",
            "udp:h:99999",
            "unix:",
        ] {
            assert!(bad.parse::<Destination>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_record_is_an_rfc5424_message_with_the_line_as_msg() {
        let formatter = Formatter {
            facility: Facility(10),
            hostname: "host".into(),
            procid: 42,
        };
        let time = DateTime::from_timestamp_nanos(1_700_000_000_123_456_789);
        let alert = br#"{"time":"t","seq":7,"prev":"p","type":"open","verdict":"alert"}"#;
        let message = formatter.format(time, 7, alert);
        assert_eq!(
            std::str::from_utf8(&message).unwrap(),
            format!(
                "<84>1 2023-11-14T22:13:20.123456Z host detector 42 open [detector@32473 seq=\"7\"] {}",
                std::str::from_utf8(alert).unwrap()
            )
        );
        let ready = br#"{"time":"t","seq":1,"prev":"p","type":"ready"}"#;
        assert!(formatter.format(time, 1, ready).starts_with(b"<86>1 "));
        let gap = br#"{"time":"t","seq":2,"prev":"p","type":"gap"}"#;
        assert!(formatter.format(time, 2, gap).starts_with(b"<84>1 "));
    }
}
