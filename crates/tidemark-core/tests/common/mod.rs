//! Test harness: a fresh database per test on the real server, and a small
//! protocol-counting proxy that counts the query messages the server gets.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tidemark_core::{Event, SourceFile};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_postgres::{Client, NoTls};

/// The server tests use: `TIDEMARK_TEST_PG` (host and port), default
/// 127.0.0.1:5432 with trust auth.
pub fn server() -> (String, u16) {
    let spec = std::env::var("TIDEMARK_TEST_PG").unwrap_or_else(|_| "127.0.0.1:5432".into());
    let (host, port) = spec.rsplit_once(':').unwrap();
    (host.to_string(), port.parse().unwrap())
}

pub async fn connect_to(host: &str, port: u16, db: &str) -> Client {
    let conn =
        format!("host={host} port={port} user=postgres dbname={db} application_name=tidemark-test");
    let (client, connection) = tokio_postgres::connect(&conn, NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A database created for one test and dropped when the test ends.
pub struct TestDb {
    pub name: String,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TestDb {
    pub async fn new() -> TestDb {
        let (host, port) = server();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("tidemark_test_{}_{n}_{nanos}", std::process::id());
        let admin = connect_to(&host, port, "postgres").await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        TestDb { name }
    }

    pub async fn client(&self) -> Client {
        let (host, port) = server();
        connect_to(&host, port, &self.name).await
    }

    /// A client whose traffic goes through a counting proxy.
    pub async fn counted_client(&self) -> (Client, Counter) {
        let (host, port) = server();
        let counter = Counter::start(&host, port).await;
        let client = connect_to("127.0.0.1", counter.port, &self.name).await;
        // Only what is sent after authentication counts.
        counter.reset();
        (client, counter)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (host, port) = server();
                let admin = connect_to(&host, port, "postgres").await;
                let _ = admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            });
        })
        .join();
    }
}

/// Counts the frontend messages of each type that pass through it.
#[derive(Clone)]
pub struct Counter {
    pub port: u16,
    queries: Arc<Mutex<Vec<String>>>,
    other: Arc<Mutex<Vec<u8>>>,
}

impl Counter {
    async fn start(host: &str, port: u16) -> Counter {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let counter = Counter {
            port: listener.local_addr().unwrap().port(),
            queries: Arc::default(),
            other: Arc::default(),
        };
        let c = counter.clone();
        let upstream = format!("{host}:{port}");
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(&upstream).await.unwrap();
                let c = c.clone();
                tokio::spawn(async move { c.pipe(client, server).await });
            }
        });
        counter
    }

    async fn pipe(self, client: TcpStream, server: TcpStream) {
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut sr, &mut cw).await;
            let _ = cw.shutdown().await;
        });
        // Untyped messages until the startup packet (protocol 3.0).
        loop {
            let Ok(len) = cr.read_i32().await else { return };
            let mut body = vec![0u8; len as usize - 4];
            if cr.read_exact(&mut body).await.is_err() {
                return;
            }
            sw.write_all(&len.to_be_bytes()).await.unwrap();
            sw.write_all(&body).await.unwrap();
            if body.get(..4) == Some(&[0, 3, 0, 0]) {
                break;
            }
        }
        loop {
            let Ok(kind) = cr.read_u8().await else { return };
            let Ok(len) = cr.read_i32().await else { return };
            let mut body = vec![0u8; len as usize - 4];
            if cr.read_exact(&mut body).await.is_err() {
                return;
            }
            if kind == b'Q' {
                let text =
                    String::from_utf8_lossy(&body[..body.len().saturating_sub(1)]).into_owned();
                self.queries.lock().unwrap().push(text);
            } else if kind != b'X' {
                self.other.lock().unwrap().push(kind);
            }
            if sw.write_all(&[kind]).await.is_err()
                || sw.write_all(&len.to_be_bytes()).await.is_err()
                || sw.write_all(&body).await.is_err()
            {
                return;
            }
        }
    }

    pub fn reset(&self) {
        self.queries.lock().unwrap().clear();
        self.other.lock().unwrap().clear();
    }

    /// Simple-query messages received since the last reset.
    pub fn queries(&self) -> Vec<String> {
        self.queries.lock().unwrap().clone()
    }

    /// Other message types (Parse, Bind, ...) since the last reset.
    pub fn other(&self) -> Vec<u8> {
        self.other.lock().unwrap().clone()
    }
}

pub fn file(name: &str, sql: &str) -> SourceFile {
    SourceFile::new(name, sql.as_bytes().to_vec())
}

/// `n` small migrations: a table with five columns and an index each.
pub fn many(n: usize) -> Vec<SourceFile> {
    (1..=n)
        .map(|i| {
            file(
                &format!("{i:04}_table_{i}.sql"),
                &format!(
                    "CREATE TABLE t{i} (id bigserial PRIMARY KEY, a text, b integer, c timestamptz DEFAULT now(), d jsonb);\nCREATE INDEX t{i}_b ON t{i} (b);\n"
                ),
            )
        })
        .collect()
}

/// Collects events.
#[derive(Default)]
pub struct Events(pub Mutex<Vec<Event>>);

impl tidemark_core::Reporter for Events {
    fn report(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

impl Events {
    pub fn all(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }
}

/// Rows of the tracking table: (version, status).
pub async fn tracking(client: &Client) -> Vec<(String, String)> {
    client
        .query(
            "SELECT version, status FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

pub async fn table_exists(client: &Client, name: &str) -> bool {
    client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .await
        .unwrap()
        .get(0)
}

/// Names in the seeds table, in name order.
pub async fn tracking_seeds(client: &Client) -> Vec<String> {
    client
        .query("SELECT name FROM schema_seeds ORDER BY name", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}
