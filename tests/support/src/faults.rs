//! A fault-injecting proxy on 127.0.0.1 between the code under test and an S3 endpoint: it
//! forwards each HTTP/1.1 request as it is (signatures stay valid: the `Host` header is kept),
//! or, while a fault is set, answers the way a failing S3 does: a 500, a 503 SlowDown, a delay
//! past any budget, a connection reset, a body cut short. One request per connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward it.
    None,
    /// Answer `500 InternalError` without forwarding.
    InternalError,
    /// Answer `503 SlowDown` without forwarding.
    SlowDown,
    /// Wait this long, then forward it.
    Delay(Duration),
    /// Close the connection without an answer (a reset).
    Reset,
    /// Forward it, then send the answer's head and only half its body, and close.
    Truncate,
}

/// Which requests a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    All,
    /// Requests with this method (`GET`, `PUT`, `HEAD`, `DELETE`).
    Method(&'static str),
    /// PUT requests after the first `n` that were let through.
    PutsAfter(usize),
}

#[derive(Debug)]
struct State {
    fault: Fault,
    only: Only,
    puts: usize,
}

/// A running proxy.
#[derive(Debug, Clone)]
pub struct FaultProxy {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    /// Requests answered with a fault.
    pub faulted: Arc<AtomicUsize>,
}

impl FaultProxy {
    /// A proxy to `upstream` (`host:port`), forwarding everything until a fault is set.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State { fault: Fault::None, only: Only::All, puts: 0 }));
        let proxy = FaultProxy { addr, state, faulted: Arc::default() };
        let server = proxy.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let proxy = server.clone();
                tokio::spawn(async move {
                    let _ = proxy.serve(socket, upstream).await;
                });
            }
        });
        proxy
    }

    /// `http://<addr>`: the endpoint to give the code under test.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on, `fault` on the requests `only` selects.
    pub fn set(&self, fault: Fault, only: Only) {
        let mut state = self.state.lock().unwrap();
        *state = State { fault, only, puts: 0 };
    }

    /// Back to forwarding everything.
    pub fn clear(&self) {
        self.set(Fault::None, Only::All);
    }

    fn fault_for(&self, method: &str) -> Fault {
        let mut state = self.state.lock().unwrap();
        let applies = match state.only {
            Only::All => true,
            Only::Method(m) => m == method,
            Only::PutsAfter(n) => {
                if method == "PUT" {
                    state.puts += 1;
                    state.puts > n
                } else {
                    false
                }
            }
        };
        if applies {
            state.fault
        } else {
            Fault::None
        }
    }

    async fn serve(&self, mut client: TcpStream, upstream: SocketAddr) -> std::io::Result<()> {
        let Some(request) = read_message(&mut client, Reading::Request).await? else { return Ok(()) };
        let method = request.head.split(' ').next().unwrap_or("").to_owned();
        let fault = self.fault_for(&method);
        if fault != Fault::None {
            self.faulted.fetch_add(1, Ordering::SeqCst);
        }
        let s3_error = |status: &str, code: &str| {
            let body =
                format!("<Error><Code>{code}</Code><Message>injected by the fault proxy</Message></Error>");
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        };
        match fault {
            Fault::InternalError => {
                return client
                    .write_all(s3_error("500 Internal Server Error", "InternalError").as_bytes())
                    .await
            }
            Fault::SlowDown => {
                return client.write_all(s3_error("503 Slow Down", "SlowDown").as_bytes()).await
            }
            Fault::Reset => {
                client.set_zero_linger()?;
                return Ok(());
            }
            Fault::Delay(d) => tokio::time::sleep(d).await,
            Fault::None | Fault::Truncate => {}
        }
        let mut server = TcpStream::connect(upstream).await?;
        server.write_all(&request.forwarded()).await?;
        let reading = if method == "HEAD" { Reading::HeadResponse } else { Reading::Response };
        let Some(response) = read_message(&mut server, reading).await? else { return Ok(()) };
        if fault == Fault::Truncate && response.body.len() > 1 {
            client.write_all(response.head_bytes().as_slice()).await?;
            client.write_all(&response.body[..response.body.len() / 2]).await?;
            client.set_zero_linger()?;
            return Ok(());
        }
        client.write_all(&response.forwarded()).await
    }
}

/// One HTTP/1.1 message: its head (start line and headers, without the blank line) and body.
struct Message {
    head: String,
    body: Vec<u8>,
}

impl Message {
    /// The head with `Connection: close` (one exchange per connection), and the body.
    fn forwarded(&self) -> Vec<u8> {
        let mut out = self.head_bytes();
        out.extend_from_slice(&self.body);
        out
    }

    fn head_bytes(&self) -> Vec<u8> {
        let mut head: Vec<&str> =
            self.head.split("\r\n").filter(|l| !l.to_ascii_lowercase().starts_with("connection:")).collect();
        head.push("Connection: close");
        format!("{}\r\n\r\n", head.join("\r\n")).into_bytes()
    }
}

/// What is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    Request,
    Response,
    /// The response to a HEAD: its Content-Length describes a body it does not have.
    HeadResponse,
}

/// Reads one message: head, then a body of its Content-Length, chunked (kept as it is), or, for
/// a response without either, until the peer closes. `None` when the peer closed first.
async fn read_message(stream: &mut TcpStream, reading: Reading) -> std::io::Result<Option<Message>> {
    let request = reading == Reading::Request;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut body = buf[head_end + 4..].to_vec();
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let no_body = reading == Reading::HeadResponse
        || head.starts_with("HTTP/1.1 204")
        || head.starts_with("HTTP/1.1 304");
    if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        while body.len() < len && !no_body {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        while !body.ends_with(b"0\r\n\r\n") {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if !request && !no_body {
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    Ok(Some(Message { head, body }))
}
