//! A real S3- and DynamoDB-compatible server for tests: `moto_server` on a free loopback
//! port, one per test (so state never leaks between tests), killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `moto_server`.
pub struct Moto {
    /// Its port.
    pub port: u16,
    child: Child,
}

impl Moto {
    /// Starts a server on a port it picks itself and waits until it answers.
    ///
    /// The server binds port 0 and reports the port it got, so two tests starting servers
    /// at once can never race for one port (picking a free port first and handing it over
    /// could, and then one test talked to the other's server until that one was killed).
    pub fn start() -> Moto {
        let mut child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("moto_server not found ({e}): `pip install 'moto[server]'` (scripts/test does this)")
            });
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the startup banner, then keeps draining the request log so the server
        // never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = line
                    .split_once("Running on http://127.0.0.1:")
                    .and_then(|(_, rest)| rest.trim().parse::<u16>().ok())
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(port);
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("moto_server did not report its port: {e}"));
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "moto_server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Moto { port, child }
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The AWS environment that points SDKs (and child processes) at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// An SDK configuration for this server.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(self.endpoint())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .load()
            .await
    }

    /// Creates a bucket.
    pub async fn bucket(&self, name: &str) {
        let client = portcullis_aws::s3::client(&self.sdk_config().await);
        client.create_bucket().bucket(name).send().await.unwrap();
    }

    /// Deletes an object (as anyone with write access to the bucket could).
    pub async fn delete_object(&self, bucket: &str, key: &str) {
        let client = portcullis_aws::s3::client(&self.sdk_config().await);
        client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap();
    }

    /// Creates a secret (Secrets Manager), as the template's `ArtifactKeySecret`.
    pub async fn secret(&self, name: &str, value: &str) {
        let client = aws_sdk_secretsmanager::Client::new(&self.sdk_config().await);
        client
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .unwrap();
    }

    /// Creates the data and activity tables as `deploy/template.yaml` defines them.
    pub async fn tables(&self, data: &str, activity: &str) {
        self.table(data, "tenant", "key").await;
        self.table(activity, "pk", "sk").await;
    }

    /// Creates the counter table as `deploy/template.yaml` defines it.
    pub async fn counter_table(&self, name: &str) {
        self.table(name, "tenant", "id").await;
    }

    /// Creates a table with string `hash` and `range` keys.
    async fn table(&self, table: &str, hash: &str, range: &str) {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        let client = portcullis_aws::dynamo::client(&self.sdk_config().await);
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap()
        };
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .unwrap()
        };
        client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute(hash))
            .attribute_definitions(attribute(range))
            .key_schema(key(hash, KeyType::Hash))
            .key_schema(key(range, KeyType::Range))
            .send()
            .await
            .unwrap();
    }

    /// Stops the server (an outage).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port that accepts connections and never answers: a store slower than any
/// timeout.
pub fn black_hole() -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(64).flatten() {
            held.push(stream);
        }
    });
    (port, handle)
}
