//! The Lambda under test: `cargo lambda watch --only-lambda-apis` serving the real Lambda
//! runtime API on loopback, the built `bootstrap` polling it, and invocations sent over
//! HTTP exactly as the Lambda service would deliver them.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What an invocation came back with.
#[derive(Debug)]
pub enum Invoked {
    /// The function answered.
    Ok(Value),
    /// The function failed.
    Error {
        /// `errorType`.
        error_type: String,
        /// `errorMessage`.
        message: String,
    },
}

/// A running runtime-API emulator and `bootstrap`.
pub struct Lambda {
    port: u16,
    logs: Arc<Mutex<Vec<String>>>,
    /// Invocations answered: each logs one decision record.
    invoked: std::sync::atomic::AtomicUsize,
    // Dropped in order: the function first, then the emulator.
    _bootstrap: Process,
    _emulator: Process,
}

fn wait_for_port(port: u16, what: &str) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what} did not listen on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Lambda {
    /// Starts the emulator and the `bootstrap` binary at `bootstrap` with `env` (plus the
    /// runtime-API variables).
    pub fn start(bootstrap: &Path, env: &[(&str, String)]) -> Lambda {
        assert!(
            bootstrap.is_file(),
            "`{}` is not built: run the tests with `cargo test --workspace`",
            bootstrap.display()
        );
        let cargo_lambda = which("cargo-lambda").unwrap_or_else(|| {
            panic!(
                "cargo-lambda is not installed: `pip install cargo-lambda` (scripts/test does this)"
            )
        });
        let port = free_port();
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let workspace = workspace.canonicalize().unwrap_or(workspace);
        let emulator = Command::new(cargo_lambda)
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
            ])
            .arg(port.to_string())
            .current_dir(&workspace)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let emulator = Process(emulator);
        wait_for_port(port, "cargo lambda watch");

        let mut command = Command::new(bootstrap);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("PORTCULLIS_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let logs = Arc::clone(&logs);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    logs.lock().unwrap().push(line);
                }
            });
        }
        Lambda {
            port,
            logs,
            invoked: std::sync::atomic::AtomicUsize::new(0),
            _bootstrap: Process(child),
            _emulator: emulator,
        }
    }

    /// Invokes the function with `event` through the emulator's Invoke API.
    pub fn invoke(&self, event: &Value) -> Invoked {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let mut response = agent
            .post(&format!(
                "http://127.0.0.1:{}/2015-03-31/functions/_/invocations",
                self.port
            ))
            .header("content-type", "application/json")
            .send(serde_json::to_vec(event).unwrap())
            .unwrap();
        let failed = response.headers().contains_key("x-amz-function-error")
            || !response.status().is_success();
        let body: Value =
            serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap();
        self.invoked
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if failed || body.get("errorType").is_some() {
            Invoked::Error {
                error_type: body["errorType"].as_str().unwrap_or_default().to_owned(),
                message: body["errorMessage"].as_str().unwrap_or_default().to_owned(),
            }
        } else {
            Invoked::Ok(body)
        }
    }

    /// Everything the function has logged so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// The decision records logged so far, parsed: one per invocation answered, waited for
    /// (up to 10 s) while the function's output is still on its way through the pipe.
    pub fn decisions(&self) -> Vec<Value> {
        let invoked = self.invoked.load(std::sync::atomic::Ordering::SeqCst);
        let start = Instant::now();
        loop {
            let decisions: Vec<Value> = self
                .logs()
                .iter()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|v| v["target"] == "portcullis::decision")
                .collect();
            if decisions.len() >= invoked || start.elapsed() > Duration::from_secs(10) {
                return decisions;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Runs a future to completion on a fresh runtime.
pub fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
