//! A real HTTP server on loopback for lookups: it answers every request with one JSON body
//! (or a status, a delay, a body of a given size) and keeps what it was sent, headers
//! included, so a test can check what reached it. HTTP/1.1, one request per connection
//! unless the client keeps it alive.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the stub answers.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: String,
    /// How long it waits before answering.
    pub delay: Duration,
}

impl Reply {
    /// `200` with `body`, at once.
    pub fn json(body: &str) -> Reply {
        Reply {
            status: 200,
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }
}

/// One request the stub received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `GET /path?query`.
    pub line: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

/// The stub server. Stops with the process.
#[derive(Debug, Clone)]
pub struct Stub {
    port: u16,
    reply: Arc<Mutex<Reply>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Stub {
    /// Starts a stub answering `reply`.
    pub fn start(reply: Reply) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stub = Stub {
            port,
            reply: Arc::new(Mutex::new(reply)),
            received: Arc::new(Mutex::new(Vec::new())),
        };
        let serving = stub.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let serving = serving.clone();
                std::thread::spawn(move || serving.serve(stream));
            }
        });
        stub
    }

    /// Its origin, `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Answers `reply` from now on.
    pub fn set(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn serve(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut stream = stream;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let mut headers = Vec::new();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 {
                    return;
                }
                let header = header.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                }
            }
            let length = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .and_then(|(_, v)| v.parse::<usize>().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            self.received.lock().unwrap().push(Received {
                line: line.trim_end().to_owned(),
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            let reply = self.reply.lock().unwrap().clone();
            std::thread::sleep(reply.delay);
            let answer = format!(
                "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
                reply.status,
                reply.body.len(),
                reply.body
            );
            if stream.write_all(answer.as_bytes()).is_err() {
                return;
            }
        }
    }
}
