//! The notifier against a real database and a receiver over HTTP that verifies signatures and applies each
//! notification id once, counting its effects.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use notify::signature::{self, ID_HEADER, SIGNATURE_HEADER};
use notify::{Notifier, NotifierConfig, Schedule, Subscriber};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const SECRET: &str = "receiver-secret";

/// What the receiver answers after it applied a notification.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// 2xx.
    Up,
    /// 503 before applying anything: the receiver is down.
    Down,
    /// Applies, then answers 500: the acknowledgement is lost.
    LosesAcks,
}

#[derive(Default)]
struct Receiver {
    mode: Mutex<Option<Mode>>,
    requests: AtomicUsize,
    refused: AtomicUsize,
    /// Times each notification id was applied: the effects.
    applied: Mutex<HashMap<Uuid, usize>>,
    /// Requests per id, to see repeats.
    seen: Mutex<HashMap<Uuid, usize>>,
}

impl Receiver {
    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = Some(mode);
    }

    fn effects(&self) -> usize {
        self.applied.lock().unwrap().values().sum()
    }
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    receiver.requests.fetch_add(1, Ordering::SeqCst);
    let mode = receiver.mode.lock().unwrap().unwrap_or(Mode::Up);
    if mode == Mode::Down {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    if signature::verify(
        SECRET.as_bytes(),
        header,
        &body,
        now,
        signature::DEFAULT_TOLERANCE,
    )
    .is_err()
    {
        receiver.refused.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    let Some(id) = headers
        .get(ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Uuid>().ok())
    else {
        return StatusCode::BAD_REQUEST;
    };
    *receiver.seen.lock().unwrap().entry(id).or_default() += 1;
    // Applied once per id, however often it comes.
    receiver.applied.lock().unwrap().entry(id).or_insert(1);
    match mode {
        Mode::LosesAcks => StatusCode::INTERNAL_SERVER_ERROR,
        Mode::Up | Mode::Down => StatusCode::NO_CONTENT,
    }
}

async fn start_receiver() -> (Arc<Receiver>, SocketAddr) {
    let receiver = Arc::new(Receiver::default());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(Arc::clone(&receiver));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (receiver, address)
}

/// Five attempts 100 ms apart, without jitter.
fn quick() -> NotifierConfig {
    NotifierConfig {
        schedule: "100ms,100ms,100ms,100ms"
            .parse::<Schedule>()
            .unwrap()
            .with_jitter(0.0),
        poll_interval: Duration::from_millis(20),
        request_timeout: Duration::from_secs(2),
        ..NotifierConfig::default()
    }
}

struct Setup {
    db: testkit::TestDb,
    receiver: Arc<Receiver>,
    shutdown: CancellationToken,
}

impl Setup {
    async fn new(secret: &str) -> Self {
        let db = testkit::TestDb::new().await;
        let (receiver, address) = start_receiver().await;
        let subscriber = Subscriber {
            name: "payments".into(),
            url: format!("http://{address}/hook"),
            secret: secret.into(),
            kinds: vec!["order.completed".into()],
        };
        notify::subscribe(db.pool(), &subscriber).await.unwrap();
        Self {
            db,
            receiver,
            shutdown: CancellationToken::new(),
        }
    }

    async fn send(&self, count: usize) -> Vec<Uuid> {
        let mut tx = self.db.pool().begin().await.unwrap();
        let mut ids = Vec::new();
        for n in 0..count {
            let body = serde_json::json!({ "payment": n, "result": "captured" });
            ids.push(
                notify::notify(&mut tx, "payments", "payment.result", &body)
                    .await
                    .unwrap(),
            );
        }
        tx.commit().await.unwrap();
        ids
    }

    fn start_worker(&self) {
        let notifier = Notifier::new(self.db.pool().clone(), quick()).unwrap();
        tokio::spawn(notifier.run(self.shutdown.clone()));
    }

    async fn status_of(&self, id: Uuid) -> notify::Notification {
        notify::show(self.db.pool(), id).await.unwrap()
    }

    /// Waits until `id` leaves pending; its final state.
    async fn settled(&self, id: Uuid) -> notify::Notification {
        for _ in 0..300 {
            let notification = self.status_of(id).await;
            if notification.status != "pending" {
                return notification;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("notification {id} still pending after 6 s");
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[tokio::test]
async fn a_receiver_down_for_a_while_gets_it_once_it_is_back() {
    let setup = Setup::new(SECRET).await;
    setup.receiver.set(Mode::Down);
    let id = setup.send(1).await[0];
    setup.start_worker();
    while setup.receiver.requests.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(setup.receiver.effects(), 0);
    setup.receiver.set(Mode::Up);
    let notification = setup.settled(id).await;
    assert_eq!(notification.status, "delivered");
    assert!(notification.attempts >= 3, "{}", notification.attempts);
    assert!(notification.delivered_at.is_some());
    assert_eq!(setup.receiver.effects(), 1);
}

#[tokio::test]
async fn lost_acknowledgements_bring_repeats_that_are_applied_once() {
    let setup = Setup::new(SECRET).await;
    setup.receiver.set(Mode::LosesAcks);
    let id = setup.send(1).await[0];
    setup.start_worker();
    while setup.receiver.requests.load(Ordering::SeqCst) < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    setup.receiver.set(Mode::Up);
    assert_eq!(setup.settled(id).await.status, "delivered");
    assert!(
        setup.receiver.seen.lock().unwrap()[&id] >= 4,
        "repeats arrived"
    );
    assert_eq!(setup.receiver.effects(), 1, "repeats are applied once");
}

#[tokio::test]
async fn a_bad_signature_is_refused_and_given_up_after_the_schedule() {
    let setup = Setup::new("not-the-receivers-secret").await;
    let id = setup.send(1).await[0];
    setup.start_worker();
    let notification = setup.settled(id).await;
    assert_eq!(notification.status, "given_up");
    assert_eq!(
        notification.attempts, 5,
        "the first attempt and one after each of four waits"
    );
    assert_eq!(
        notification.last_error.as_deref(),
        Some("answered 401 Unauthorized")
    );
    assert_eq!(setup.receiver.refused.load(Ordering::SeqCst), 5);
    assert_eq!(setup.receiver.effects(), 0, "nothing applied");
    assert_eq!(notify::counts(setup.db.pool()).await.unwrap().given_up, 1);

    // An operator sends it again; it is refused the same way, from a fresh schedule.
    notify::retry(setup.db.pool(), id).await.unwrap();
    let again = setup.settled(id).await;
    assert_eq!((again.status.as_str(), again.attempts), ("given_up", 5));
    assert_eq!(setup.receiver.refused.load(Ordering::SeqCst), 10);
}

#[tokio::test]
async fn two_workers_send_each_notification_once() {
    let setup = Setup::new(SECRET).await;
    let ids = setup.send(60).await;
    setup.start_worker();
    setup.start_worker();
    for &id in &ids {
        assert_eq!(setup.settled(id).await.status, "delivered");
    }
    let seen = setup.receiver.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 60);
    assert!(seen.values().all(|&count| count == 1), "{seen:?}");
}

#[tokio::test]
async fn a_rolled_back_notification_is_never_sent_and_an_unknown_subscriber_is_named() {
    let setup = Setup::new(SECRET).await;
    let mut tx = setup.db.pool().begin().await.unwrap();
    notify::notify(
        &mut tx,
        "payments",
        "payment.result",
        &serde_json::json!({}),
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    let mut conn = setup.db.pool().acquire().await.unwrap();
    let unknown = notify::notify(
        &mut conn,
        "nobody",
        "payment.result",
        &serde_json::json!({}),
    )
    .await
    .unwrap_err();
    assert_eq!(unknown.to_string(), "no subscriber is named nobody");

    let webhooks = notify::notify_kind(
        &mut conn,
        "order.completed",
        &serde_json::json!({"order": 1}),
    )
    .await
    .unwrap();
    assert_eq!(webhooks, 1, "the one subscriber of order.completed");
    let notifier = Notifier::new(setup.db.pool().clone(), quick()).unwrap();
    assert_eq!(
        notifier.send_due().await.unwrap(),
        1,
        "only the webhook is due"
    );
    assert_eq!(notifier.send_due().await.unwrap(), 0);
    assert_eq!(setup.receiver.effects(), 1);
}
