//! The console's JSON API and pages over a real pipeline (Postgres and Kafka of `./dev up`): the overview
//! shows what the database holds, an order is found by id and by idempotency key with its saga's timeline,
//! a dead letter is shown decoded and redriven once with the token only, and bad input is a problem+json
//! 4xx that changes nothing.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{TOKEN, dead_letter_of_the_global_view, global_rows, running, running_with};

#[tokio::test]
async fn the_overview_shows_what_the_database_holds() {
    // Half the payments declined: both final states among 12 orders (all alike 1 run in 2,000).
    let running = running_with(12, 0.5).await;
    // The console samples the lag from its start; the first sample takes a moment.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let overview = loop {
        let overview = running.json("/api/overview").await;
        if !overview["lag_history"].as_array().unwrap().is_empty() {
            break overview;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no lag sample in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let in_database: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM orders_view GROUP BY status")
            .fetch_all(running.db.pool())
            .await
            .unwrap();
    let shown: BTreeMap<String, i64> =
        serde_json::from_value(overview["orders_last_hour"].clone()).unwrap();
    assert_eq!(shown, in_database.into_iter().collect::<BTreeMap<_, _>>());
    assert_eq!(shown.values().sum::<i64>(), 12);
    assert!(
        shown.contains_key("cancelled"),
        "declines among them: {shown:?}"
    );
    assert_eq!(overview["sagas_in_flight"], 0);
    assert_eq!(overview["sagas_needing_attention"], 0);
    assert_eq!(overview["outbox"]["quarantined"], 0);
    let groups: Vec<&str> = overview["consumer_lag"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            assert!(g["lag"].is_i64(), "every group's topics exist: {g}");
            g["group"].as_str().unwrap()
        })
        .collect();
    assert_eq!(groups.len(), 5, "{groups:?}");
    assert!(groups.iter().any(|g| g.ends_with("orchestrator")));

    // The chart's minutes add up to the same orders, by state.
    let mut per_state: BTreeMap<String, i64> = BTreeMap::new();
    for minute in overview["orders_per_minute"].as_array().unwrap() {
        for state in ["placed", "completed", "cancelled"] {
            *per_state.entry(state.to_owned()).or_default() += minute[state].as_i64().unwrap();
        }
    }
    per_state.retain(|_, n| *n > 0);
    assert_eq!(per_state, shown);
    // The lag is sampled from the start.
    let sample = &overview["lag_history"][0];
    assert!(sample["consumer_lag"].is_i64(), "{overview}");

    // The page shows the same figures.
    let page = running.get("/").await.text().await.unwrap();
    let completed = overview["orders_last_hour"]["completed"]
        .as_i64()
        .unwrap_or(0);
    assert!(
        page.contains(&format!(
            "id=\"orders-completed\"><b class=\"\">{completed}</b>"
        )),
        "{page}"
    );
    assert!(page.contains("http-equiv=\"refresh\""), "it reloads itself");
    assert!(page.contains("<svg id=\"orders-per-minute\""), "{page}");
    running.stop().await;
}

#[tokio::test]
async fn an_order_is_found_by_id_and_by_key_with_its_sagas_timeline() {
    let running = running(3).await;
    let (id, key): (uuid::Uuid, String) =
        sqlx::query_as("SELECT order_id, idempotency_key FROM order_submissions LIMIT 1")
            .fetch_one(running.db.pool())
            .await
            .unwrap();
    assert!(key.starts_with(&running.workload.run_id));
    let by_id = running.json(&format!("/api/orders/{id}")).await;
    let by_key = running.json(&format!("/api/orders/{key}")).await;
    assert_eq!(by_id, by_key);
    assert_eq!(by_id["order"]["order_id"], id.to_string());
    assert_eq!(by_id["order"]["idempotency_key"], key);
    let (steps,): (i64,) = sqlx::query_as("SELECT count(*) FROM saga_events WHERE order_id = $1")
        .bind(id)
        .fetch_one(running.db.pool())
        .await
        .unwrap();
    let timeline = by_id["timeline"].as_array().unwrap();
    assert_eq!(timeline.len() as i64, steps);
    assert!(steps >= 2, "a saga that ended took steps");
    assert!(by_id["saga"]["outcome"].is_string(), "{}", by_id["saga"]);
    let events: Vec<&str> = by_id["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(events.first(), Some(&"OrderPlaced"), "{events:?}");
    assert!(
        by_id["payment"]["status"].is_string(),
        "{}",
        by_id["payment"]
    );

    let page = running.get(&format!("/orders/{id}")).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    for step in timeline {
        let event_type = step["event_type"].as_str().unwrap();
        assert!(
            page.contains(&format!("<td>{event_type}</td>")),
            "{event_type} in\n{page}"
        );
    }
    // The search form leads to the same page.
    let searched = running.get(&format!("/orders?ref={key}")).await;
    assert_eq!(searched.url().path(), format!("/orders/{key}"));
    running.stop().await;
}

#[tokio::test]
async fn bad_input_is_a_problem_with_a_4xx_status_and_changes_nothing() {
    let running = running(1).await;
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM orders_view")
        .fetch_one(running.db.pool())
        .await
        .unwrap();
    let unknown = uuid::Uuid::now_v7();
    let long = "k".repeat(300);
    for (path, status, detail) in [
        (format!("/api/orders/{unknown}"), 404, unknown.to_string()),
        (
            "/api/orders/no-such-key".to_owned(),
            404,
            "no-such-key".to_owned(),
        ),
        (
            "/api/orders/%20".to_owned(),
            400,
            "give an order id".to_owned(),
        ),
        (
            format!("/api/orders/{long}"),
            400,
            "300 characters".to_owned(),
        ),
        (
            "/api/sagas/whatever".to_owned(),
            404,
            "/api/sagas/whatever".to_owned(),
        ),
    ] {
        let answer = running.get(&path).await;
        assert_eq!(answer.status(), status, "{path}");
        assert_eq!(
            answer.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let problem: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(problem["status"], status);
        assert!(
            problem["detail"].as_str().unwrap().contains(&detail),
            "{path}: {problem}"
        );
    }
    // The page of an unknown order says so, with the same status.
    let page = running.get(&format!("/orders/{unknown}")).await;
    assert_eq!(page.status(), 404);
    assert!(page.text().await.unwrap().contains("no order has the id"));
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM orders_view")
        .fetch_one(running.db.pool())
        .await
        .unwrap();
    assert_eq!(before, after);
    running.stop().await;
}

#[tokio::test]
async fn a_dead_letter_is_shown_decoded_and_redriven_once_with_the_token_only() {
    let running = running(2).await;
    let (dlq, order, event_id) = dead_letter_of_the_global_view(&running).await;
    assert_eq!(global_rows(&running, order).await, 0);

    let letters = running.json(&format!("/api/dead-letters/{dlq}")).await;
    let letters = letters.as_array().unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(
        letters[0]["consumer_group"]
            .as_str()
            .unwrap()
            .ends_with("orders-global")
    );
    let shown = running.json(&format!("/api/dead-letters/{dlq}/0/0")).await;
    assert_eq!(shown["value"]["type"], "OrderPlaced", "{shown}");
    assert_eq!(shown["value"]["order_id"], order.to_string(), "{shown}");
    assert!(shown["envelope"]["dlq.source_topic"].is_string(), "{shown}");
    assert_eq!(
        shown["headers"]["event_id"],
        event_id.to_string(),
        "{shown}"
    );

    let client = reqwest::Client::new();
    let redrive = |token: Option<&str>, origin: Option<&str>| {
        let mut request = client
            .post(format!("{}/api/dead-letters/{dlq}/redrive", running.base))
            .json(&serde_json::json!({ "letters": [{ "partition": 0, "offset": 0 }] }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let refused = [
        (redrive(None, None).await.unwrap(), 401),
        (redrive(Some("wrong"), None).await.unwrap(), 401),
        (
            redrive(Some(TOKEN), Some("http://elsewhere.example"))
                .await
                .unwrap(),
            403,
        ),
    ];
    for (answer, status) in refused {
        assert_eq!(answer.status(), status);
        assert_eq!(answer.headers()["content-type"], "application/problem+json");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        global_rows(&running, order).await,
        0,
        "nothing redriven without the token"
    );

    for time in 1..=2 {
        let answer = redrive(Some(TOKEN), None).await.unwrap();
        assert_eq!(answer.status(), 200);
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["redriven"], 1);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while global_rows(&running, order).await == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "redrive {time}: not applied in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // The second redrive reached the view too, and its inbox skipped it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(global_rows(&running, order).await, 1);
    let applied: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM inbox WHERE event_id = $1 AND consumer_group LIKE '%orders-global'",
    )
    .bind(event_id)
    .fetch_one(running.db.pool())
    .await
    .unwrap();
    assert_eq!(applied, 1, "applied once");
    let actions: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT via, actor, action, outcome FROM operator_actions WHERE target = $1 ORDER BY at",
    )
    .bind(&dlq)
    .fetch_all(running.db.pool())
    .await
    .unwrap();
    assert_eq!(
        actions,
        vec![
            (
                "console".into(),
                "console@127.0.0.1".into(),
                "dlq.redrive".into(),
                "done".into()
            );
            2
        ]
    );
    running.stop().await;
}

#[tokio::test]
async fn the_history_lists_replays_and_reconciliation_runs_with_their_details() {
    let running = running(2).await;
    // A real dry run of a replay over the pipeline's orders events.
    let shared = running.pipeline.shared();
    let (progress, cancel) = (
        indicatif::ProgressBar::hidden(),
        tokio_util::sync::CancellationToken::new(),
    );
    let replayer = ops::replay::Replayer {
        pool: running.db.pool(),
        kafka: &shared.config.kafka,
        codec: std::sync::Arc::clone(&shared.codec),
        progress: &progress,
        cancel: &cancel,
        max_batch: 100,
    };
    let spec = ops::replay::ReplaySpec {
        source: shared
            .config
            .services
            .topics
            .events(producers::topics::Service::Orders),
        partitions: None,
        range: ops::replay::Range::default(),
        filters: ops::replay::Filters::default(),
        target: ops::replay::Target::Group {
            group: "orders-view".into(),
            rebuild: false,
        },
        rate: None,
    };
    let report = replayer
        .start(spec, ops::replay::Mode::DryRun, "on-call")
        .await
        .unwrap();
    // A reconciliation run as the reconcile command records one, with a repair left for people.
    let run = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO reconcile_runs (id, run_by, window_from, window_to, mode, found, repaired, outcome)
         VALUES ($1, 'finance', now() - interval '1 day', now(), 'apply', '{}', '{}', 'differences')",
    )
    .bind(run)
    .execute(running.db.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO reconcile_repairs (difference_key, run_id, class, amount_minor, currency, action, reason)
         VALUES ('k1', $1, 'captured_twice', 1999, 'EUR', 'needs_attention', 'the provider refused the refund')",
    )
    .bind(run)
    .execute(running.db.pool())
    .await
    .unwrap();

    let replays = running.json("/api/replays").await;
    let listed = &replays.as_array().unwrap()[0];
    assert_eq!(listed["id"], report.id.to_string());
    assert_eq!(listed["mode"], "dry_run");
    assert_eq!(listed["run_by"], "on-call");
    assert!(listed["read"].as_i64().unwrap() > 0, "{listed}");
    assert_eq!(
        &running.json(&format!("/api/replays/{}", report.id)).await,
        listed
    );
    let reconciliation = running.json(&format!("/api/reconciliations/{run}")).await;
    assert_eq!(reconciliation["run_by"], "finance");
    assert_eq!(reconciliation["repairs"][0]["class"], "captured_twice");
    let page = running
        .get(&format!("/reconciliations/{run}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("the provider refused the refund"), "{page}");
    for (path, status) in [
        ("/api/replays/not-a-uuid".to_owned(), 400),
        (format!("/api/replays/{}", uuid::Uuid::now_v7()), 404),
        (
            format!("/api/reconciliations/{}", uuid::Uuid::now_v7()),
            404,
        ),
    ] {
        assert_eq!(running.get(&path).await.status(), status, "{path}");
    }
    running.stop().await;
}

#[tokio::test]
async fn a_replays_dry_run_starts_here_and_shows_the_command_that_applies_it() {
    let running = running(2).await;
    let source = running
        .pipeline
        .shared()
        .config
        .services
        .topics
        .events(producers::topics::Service::Orders);
    let dry_run = "/api/replays/dry-run";
    let wanted = serde_json::json!({ "source": source, "to_group": "orders-view" });
    assert_eq!(
        running.post(dry_run, Some(&wanted), None).await.status(),
        401
    );
    for (body, detail) in [
        (serde_json::json!({ "source": source }), "give one target"),
        (
            serde_json::json!({ "source": "no-such-topic", "to_group": "orders-view" }),
            "no-such-topic",
        ),
        (
            serde_json::json!({ "source": source, "to_group": "payments" }),
            "payments",
        ),
    ] {
        let answer = running.post(dry_run, Some(&body), Some(TOKEN)).await;
        assert_eq!(answer.status(), 400);
        let problem: serde_json::Value = answer.json().await.unwrap();
        assert!(
            problem["detail"].as_str().unwrap().contains(detail),
            "{problem}"
        );
    }

    let answer = running.post(dry_run, Some(&wanted), Some(TOKEN)).await;
    assert_eq!(answer.status(), 200);
    let done: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(
        done["apply"],
        format!("orderflow replay {source} --to-group orders-view --apply")
    );
    let (run_by, mode, matched): (String, String, i64) =
        sqlx::query_as("SELECT run_by, mode, matched FROM replays WHERE id = $1")
            .bind(
                done["report"]["id"]
                    .as_str()
                    .unwrap()
                    .parse::<uuid::Uuid>()
                    .unwrap(),
            )
            .fetch_one(running.db.pool())
            .await
            .unwrap();
    assert_eq!(
        (run_by.as_str(), mode.as_str()),
        ("console@127.0.0.1", "dry_run")
    );
    assert!(matched > 0);
    // A replay through orders-view applies in the inbox scope orders-view; a dry run applies nothing.
    let applied: i64 =
        sqlx::query_scalar("SELECT count(*) FROM inbox WHERE consumer_group LIKE 'orders-view%'")
            .fetch_one(running.db.pool())
            .await
            .unwrap();
    assert_eq!(applied, 0, "a dry run applies nothing");
    running.stop().await;
}

#[tokio::test]
async fn a_reconciliations_dry_run_starts_here_finds_the_differences_and_repairs_nothing() {
    // Every payment authorized: each order completes, captured at the provider.
    let running = running_with(2, 0.0).await;
    let db = running.db.pool();
    // Our books lose one capture the provider made.
    let (provider_ref, order): (String, uuid::Uuid) = sqlx::query_as(
        "DELETE FROM payment_operations WHERE provider_ref =
             (SELECT provider_ref FROM payment_operations WHERE operation = 'capture' LIMIT 1)
         RETURNING provider_ref, order_id",
    )
    .fetch_one(db)
    .await
    .unwrap();
    let dry_run = "/api/reconciliations/dry-run";
    // The last hour and the next: the orders' window, whatever the time of day.
    let at = |hours| {
        (chrono::Utc::now() + chrono::Duration::hours(hours))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let (from, to) = (at(-1), at(1));
    let wanted = serde_json::json!({ "from": from, "to": to });
    let runs = || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM reconcile_runs")
            .fetch_one(db)
            .await
            .unwrap();
        n
    };
    assert_eq!(
        running.post(dry_run, Some(&wanted), None).await.status(),
        401
    );
    for (body, detail) in [
        (
            serde_json::json!({ "from": "last tuesday" }),
            "last tuesday",
        ),
        (serde_json::json!({ "to": to }), "needs its start"),
        (serde_json::json!({ "from": to, "to": from }), "not before"),
        (serde_json::json!({ "window": "today" }), "unknown field"),
    ] {
        let answer = running.post(dry_run, Some(&body), Some(TOKEN)).await;
        assert_eq!(answer.status(), 400);
        let problem: serde_json::Value = answer.json().await.unwrap();
        assert!(
            problem["detail"].as_str().unwrap().contains(detail),
            "{problem}"
        );
    }
    assert_eq!(runs().await, 0, "nothing was started");

    let answer = running.post(dry_run, Some(&wanted), Some(TOKEN)).await;
    assert_eq!(answer.status(), 200);
    let done: serde_json::Value = answer.json().await.unwrap();
    // The lost capture is among what it found (a provider timeout may add its own).
    let differences = done["differences"].as_array().unwrap();
    let lost: Vec<&serde_json::Value> = differences
        .iter()
        .filter(|d| d["provider_ref"] == provider_ref.as_str())
        .collect();
    assert_eq!(lost.len(), 1, "{done}");
    assert_eq!(lost[0]["class"], "captured_not_recorded");
    assert_eq!(lost[0]["order_id"], order.to_string());
    assert_eq!(
        done["apply"],
        format!("orderflow reconcile --from {from} --to {to} --apply")
    );
    let (run_by, mode, outcome): (String, String, String) =
        sqlx::query_as("SELECT run_by, mode, outcome FROM reconcile_runs WHERE id = $1")
            .bind(
                done["run_id"]
                    .as_str()
                    .unwrap()
                    .parse::<uuid::Uuid>()
                    .unwrap(),
            )
            .fetch_one(db)
            .await
            .unwrap();
    assert_eq!(
        (run_by.as_str(), mode.as_str(), outcome.as_str()),
        ("console@127.0.0.1", "dry_run", "differences")
    );
    let (repairs, operations): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM reconcile_repairs),
                (SELECT count(*) FROM payment_operations WHERE provider_ref = $1)",
    )
    .bind(&provider_ref)
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!((repairs, operations), (0, 0), "a dry run repairs nothing");
    running.stop().await;
}
