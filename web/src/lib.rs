//! What orderflow's HTTP servers share (the orders API, the payment provider, the payments service's callback
//! endpoint, the schema registry): [`serve`].
#![forbid(unsafe_code)]

use std::future::Future;

use axum::Router;
use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;

/// Serves `router` on `listener` until `shutdown` completes, then finishes the requests under way.
///
/// Every accepted connection has `TCP_NODELAY`, so that an answer written in more than one piece is not held
/// back by Nagle's algorithm until the client acknowledges the first (a delayed acknowledgement costs up to
/// 40 ms on Linux) on the kept-alive connections services use to call each other. Handlers can extract the
/// client's address as `ConnectInfo<SocketAddr>` (the console's audit trail names it).
///
/// # Errors
/// When accepting or serving fails.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
    });
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[tokio::test]
    async fn it_serves_until_shutdown_and_tells_handlers_the_clients_address() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route(
            "/",
            axum::routing::get(
                |axum::extract::ConnectInfo(client): axum::extract::ConnectInfo<
                    std::net::SocketAddr,
                >| async move { format!("hello {}", client.ip()) },
            ),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, router, async {
            stopped.await.ok();
        }));
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("hello 127.0.0.1"), "{answer}");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "the listener is closed after the shutdown"
        );
    }
}
