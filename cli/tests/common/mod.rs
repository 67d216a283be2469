//! What the tests that run the `orderflow` binary share.
#![allow(dead_code)]

/// An address on 127.0.0.1 that nothing listens on now.
pub fn free_local_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// `GET path` over plain HTTP/1.1: the whole answer, status line first.
pub async fn get(addr: &str, path: &str) -> std::io::Result<String> {
    send(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await
}

/// Sends `request` (a whole HTTP/1.1 request, with `Connection: close`) to `addr`: the whole answer.
pub async fn send(addr: &str, request: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    Ok(answer)
}

/// Waits until `process` (`orderflow serve <part>`) listens on `health`, which it does once it serves;
/// panics if it exits first or takes over a minute.
pub async fn wait_until_serving(process: &mut std::process::Child, health: &str, part: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while tokio::net::TcpStream::connect(health).await.is_err() {
        assert!(
            process.try_wait().unwrap().is_none(),
            "serve {part} exited before it served"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "serve {part} never served"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The `orderflow` binary on `db`'s database as its migrating user, without a config file from the
/// environment.
pub fn orderflow_on(db: &testkit::TestDb) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_orderflow"));
    command
        .env("DATABASE_URL", db.url())
        .env_remove("ORDERFLOW_CONFIG");
    command
}

/// `orderflow args` on `db`'s database, run to its end.
pub fn run_on(db: &testkit::TestDb, args: &[&str]) -> std::process::Output {
    orderflow_on(db).args(args).output().unwrap()
}

/// A process's output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
