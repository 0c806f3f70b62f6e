//! A small HTTP/1.1 server on localhost for `cargo medwasm serve` and the Chromium
//! runner: static files with the right MIME types (`application/wasm` above all),
//! no caching, and POST bodies handed to the caller. One thread per connection,
//! `Connection: close`; it only ever serves one developer's browser.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, Result};

/// Largest request body accepted (bench results of big models are a few MiB).
pub const MAX_BODY: usize = 256 * 1024 * 1024;
/// Largest request head accepted.
pub const MAX_HEAD: usize = 64 * 1024;

/// One request.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST` …
    pub method: String,
    /// The path without the query, percent-decoded: `/pkg/x.wasm`.
    pub path: String,
    /// The body (empty for GET).
    pub body: Vec<u8>,
}

/// One response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// 200 with `body` of type `content_type`.
    pub fn ok(content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status: 200,
            content_type,
            body: body.into(),
        }
    }

    /// A plain-text error page.
    pub fn error(status: u16, message: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: message.into().into_bytes(),
        }
    }

    /// The file at `path` under `root`, or 404 (also for `..` and absolute paths).
    pub fn file(root: &Path, path: &str) -> Response {
        let Some(file) = resolve(root, path) else {
            return Response::error(404, format!("not found: {path}"));
        };
        match std::fs::read(&file) {
            Ok(bytes) => Response::ok(mime_type(&file), bytes),
            Err(_) => Response::error(404, format!("not found: {path}")),
        }
    }
}

/// The handler a server calls for every request.
pub type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// A running server; stopped (and its thread joined) on drop.
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

impl Server {
    /// Listens on `127.0.0.1:port` (`0`: any free port) and serves in a thread.
    pub fn start(port: u16, handler: Arc<Handler>) -> Result<Server> {
        let listener = TcpListener::bind(("127.0.0.1", port)).with_context(|| {
            format!("cannot listen on 127.0.0.1:{port}; another program uses the port: pass another `--port`, or `--port 0` for any free one")
        })?;
        let addr = listener
            .local_addr()
            .context("cannot read the listening address")?;
        // Non-blocking accept so that the loop sees `stop` without a wake-up connection.
        listener
            .set_nonblocking(true)
            .context("cannot configure the listening socket")?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let handler = Arc::clone(&handler);
                        std::thread::spawn(move || {
                            let _ = handle(stream, handler.as_ref());
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(Server {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Blocks until the process is interrupted (for `serve`).
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn handle(stream: TcpStream, handler: &Handler) -> Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let port = stream.local_addr()?.port();
    let mut reader = BufReader::new(stream.try_clone()?);
    match read_request(&mut reader, port)? {
        Incoming::Request(request) => respond(stream, &handler(&request)),
        Incoming::Refused(response) => respond(stream, &response),
        Incoming::Closed => Ok(()),
    }
}

/// What [`read_request`] made of a connection's bytes.
#[derive(Debug)]
pub enum Incoming {
    /// A complete request for the handler.
    Request(Request),
    /// A request refused before the handler sees it (a head too large, a foreign
    /// `Host`, a body too large …), with the response that says why.
    Refused(Response),
    /// The client hung up before sending a whole request.
    Closed,
}

/// Reads one request (head, then body) from a connection to the server on `port`.
/// Whatever the client sends, it reads at most [`MAX_HEAD`] bytes of head and
/// [`MAX_BODY`] of body, and memory grows with what arrives, not with what the
/// client announced; `Err` only for an I/O error.
pub fn read_request(reader: &mut impl BufRead, port: u16) -> std::io::Result<Incoming> {
    let mut head = Vec::new();
    {
        // At most MAX_HEAD bytes of head, however the client sends them: a line
        // without an end cannot grow past the limit.
        let mut limited = (&mut *reader).take(MAX_HEAD as u64);
        loop {
            let mut line = String::new();
            limited.read_line(&mut line)?;
            // No line end: the limit was reached, or the client hung up.
            if !line.ends_with('\n') {
                if limited.limit() == 0 {
                    return Ok(Incoming::Refused(Response::error(
                        431,
                        "request head too large",
                    )));
                }
                return Ok(Incoming::Closed);
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
            head.push(line);
        }
    }
    let Some(first) = head.first() else {
        return Ok(Incoming::Closed);
    };
    let mut words = first.split_whitespace();
    let method = words.next().unwrap_or("").to_string();
    let target = words.next().unwrap_or("/");
    let path = percent_decode(target.split(['?', '#']).next().unwrap_or("/"));
    let headers: BTreeMap<String, String> = head[1..]
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    // Only pages loaded from this server by its own name: a page elsewhere that
    // points a DNS name at 127.0.0.1 (DNS rebinding) sends its own name and is
    // refused, so it cannot read the project's sample vectors.
    let host_ok = headers.get("host").is_some_and(|host| {
        host == &format!("127.0.0.1:{port}") || host == &format!("localhost:{port}")
    });
    if !host_ok {
        return Ok(Incoming::Refused(Response::error(
            403,
            format!("open http://127.0.0.1:{port}/ or http://localhost:{port}/"),
        )));
    }
    if headers.contains_key("transfer-encoding") {
        return Ok(Incoming::Refused(Response::error(
            411,
            "send a Content-Length",
        )));
    }
    let length: usize = match headers.get("content-length").map(|v| v.parse()) {
        None => 0,
        Some(Ok(length)) => length,
        Some(Err(_)) => {
            return Ok(Incoming::Refused(Response::error(
                400,
                "bad Content-Length",
            )));
        }
    };
    if length > MAX_BODY {
        return Ok(Incoming::Refused(Response::error(
            413,
            "request body too large",
        )));
    }
    // Grows with what arrives, not with what the client announced.
    let mut body = Vec::new();
    reader.take(length as u64).read_to_end(&mut body)?;
    if body.len() != length {
        return Ok(Incoming::Closed); // the client hung up before its body was complete
    }
    Ok(Incoming::Request(Request { method, path, body }))
}

fn respond(mut stream: TcpStream, response: &Response) -> Result<()> {
    let reason = match response.status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    // No caching: a rebuilt package must be what the next reload runs. The isolation
    // headers are not needed for inference (it is single-threaded); they give
    // `performance.now()` its finer resolution for the latency figures.
    let head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nCross-Origin-Opener-Policy: same-origin\r\nCross-Origin-Embedder-Policy: require-corp\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(&response.body)?;
    stream.flush()?;
    Ok(())
}

/// The MIME type of a file, by extension.
pub fn mime_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "wasm" => "application/wasm",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "ts" => "text/plain; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// The file `path` (a URL path) names under `root`; `None` for anything that would
/// leave `root`. `/` and folders map to their `index.html`.
pub fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let relative = Path::new(path.trim_start_matches('/'));
    if path.contains('\\')
        || relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
    {
        return None;
    }
    let file = root.join(relative);
    if file.is_dir() {
        Some(file.join("index.html"))
    } else {
        Some(file)
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(url: &str, path: &str) -> (String, Vec<u8>) {
        let addr = url.trim_start_matches("http://").trim_end_matches('/');
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut all = Vec::new();
        stream.read_to_end(&mut all).unwrap();
        let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        (
            String::from_utf8_lossy(&all[..split]).into_owned(),
            all[split + 4..].to_vec(),
        )
    }

    #[test]
    fn serves_files_with_their_mime_type_and_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("d.wasm"), b"\0asm").unwrap();
        std::fs::write(dir.path().join("index.html"), b"<p>hi</p>").unwrap();
        let root = dir.path().to_path_buf();
        let server = Server::start(
            0,
            Arc::new(move |r: &Request| Response::file(&root, &r.path)),
        )
        .unwrap();
        let (head, body) = get(&server.url(), "/d.wasm?v=1");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("Content-Type: application/wasm"), "{head}");
        assert!(head.contains("Cache-Control: no-store"), "{head}");
        assert_eq!(body, b"\0asm");
        let (head, body) = get(&server.url(), "/");
        assert!(head.contains("text/html"), "{head}");
        assert_eq!(body, b"<p>hi</p>");
        assert!(
            get(&server.url(), "/../etc/passwd")
                .0
                .starts_with("HTTP/1.1 404")
        );
        assert!(
            get(&server.url(), "/%2e%2e/x")
                .0
                .starts_with("HTTP/1.1 404")
        );
        assert!(
            get(&server.url(), "/missing.js")
                .0
                .starts_with("HTTP/1.1 404")
        );

        // Another host name (DNS rebinding) is refused; so is an endless head line.
        let addr = server.url();
        let addr = addr.trim_start_matches("http://").trim_end_matches('/');
        let raw = |request: &[u8]| {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.write_all(request).unwrap();
            let mut all = Vec::new();
            let _ = stream.read_to_end(&mut all);
            String::from_utf8_lossy(&all).into_owned()
        };
        let evil = raw(b"GET /d.wasm HTTP/1.1\r\nHost: evil.example:80\r\n\r\n");
        assert!(evil.starts_with("HTTP/1.1 403"), "{evil}");
        let long = raw(&[b'a'; MAX_HEAD + 10]);
        assert!(long.starts_with("HTTP/1.1 431"), "{long}");
        let port = server.addr.port();
        let bad_length = raw(format!(
            "POST /x HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Length: lots\r\n\r\n"
        )
        .as_bytes());
        assert!(bad_length.starts_with("HTTP/1.1 400"), "{bad_length}");

        // A busy port says what to do.
        let port = server.addr.port();
        let handler: Arc<Handler> = Arc::new(|_: &Request| Response::error(404, ""));
        let err = format!("{:#}", Server::start(port, handler).unwrap_err());
        assert!(err.contains("`--port 0`"), "{err}");
    }
}
