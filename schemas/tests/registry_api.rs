//! The registry's REST contract over raw HTTP, as Confluent Schema Registry answers it: a fresh database
//! and a server on an ephemeral port per test.

use reqwest::Method;
use serde_json::{Value, json};
use testkit::TestDb;

const SR_JSON: &str = "application/vnd.schemaregistry.v1+json";

/// A running registry on its own database.
struct Registry {
    base: String,
    http: reqwest::Client,
    db: TestDb,
}

impl Registry {
    async fn start() -> Self {
        Self::start_with(schemas::registry::RegistryConfig::default()).await
    }

    async fn start_with(settings: schemas::registry::RegistryConfig) -> Self {
        let db = TestDb::new().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(schemas::registry::serve_with(
            listener,
            db.pool().clone(),
            settings,
            std::future::pending(),
        ));
        Self {
            base,
            // Only against a hang: no test waits this long when the registry works.
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(60))
                .build()
                .unwrap(),
            db,
        }
    }

    /// Sends `body` (JSON, with Confluent's content type) and returns the status and the JSON answer.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(None, method, path, body).await
    }

    /// As [`call`](Self::call), with `Authorization: Bearer <token>` when given.
    async fn call_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", SR_JSON)
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        assert_eq!(
            content_type.as_deref(),
            Some(SR_JSON),
            "{path}: content type of {text}"
        );
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path}: answer is not JSON ({e}): {text}"));
        (status, value)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    async fn register(&self, subject: &str, schema: &str) -> (u16, Value) {
        self.call(
            Method::POST,
            &format!("/subjects/{subject}/versions"),
            Some(json!({ "schema": schema })),
        )
        .await
    }

    /// Registers and returns the id, failing the test on anything but 200.
    async fn register_ok(&self, subject: &str, schema: &str) -> i64 {
        let (status, body) = self.register(subject, schema).await;
        assert_eq!(status, 200, "register under {subject}: {body}");
        body["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("no id in {body}"))
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(Method::DELETE, path, None).await
    }

    async fn compatible(&self, subject: &str, version: &str, schema: &str) -> bool {
        let (status, body) = self
            .call(
                Method::POST,
                &format!("/compatibility/subjects/{subject}/versions/{version}"),
                Some(json!({ "schema": schema })),
            )
            .await;
        assert_eq!(status, 200, "compatibility of {schema}: {body}");
        body["is_compatible"].as_bool().unwrap()
    }

    async fn set_level(&self, path: &str, level: &str) {
        let (status, body) = self
            .call(Method::PUT, path, Some(json!({ "compatibility": level })))
            .await;
        assert_eq!((status, body), (200, json!({ "compatibility": level })));
    }
}

/// An `Order` record with these fields (JSON text of the field list).
fn order(fields: &str) -> String {
    format!(
        r#"{{"type":"record","name":"Order","namespace":"orderflow.test","fields":[{fields}]}}"#
    )
}

const ID: &str = r#"{"name":"id","type":"string"}"#;

fn assert_error(answer: (u16, Value), status: u16, code: u64, contains: &str) {
    let (got_status, body) = answer;
    assert_eq!(got_status, status, "{body}");
    assert_eq!(body["error_code"], json!(code), "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(contains),
        "message {message:?} should contain {contains:?}"
    );
}

#[tokio::test]
async fn register_read_lookup_and_delete_as_confluent_does() {
    let sr = Registry::start().await;
    let v1 = order(ID);
    let v2 = order(&format!(
        r#"{ID},{{"name":"note","type":"string","default":""}}"#
    ));

    assert_eq!(sr.get("/schemas/types").await, (200, json!(["AVRO"])));
    assert_eq!(sr.get("/subjects").await, (200, json!([])));

    // Same schema again, even reformatted: same id, no new version.
    let id1 = sr.register_ok("orders-value", &v1).await;
    let reformatted =
        serde_json::to_string_pretty(&serde_json::from_str::<Value>(&v1).unwrap()).unwrap();
    assert_eq!(sr.register_ok("orders-value", &reformatted).await, id1);
    assert_eq!(
        sr.get("/subjects/orders-value/versions").await,
        (200, json!([1]))
    );
    assert_eq!(
        sr.get(&format!("/schemas/ids/{id1}")).await,
        (200, json!({ "schema": v1 }))
    );

    let id2 = sr.register_ok("orders-value", &v2).await;
    assert_ne!(id1, id2);
    assert_eq!(
        sr.get("/subjects/orders-value/versions").await,
        (200, json!([1, 2]))
    );
    let latest = json!({"subject": "orders-value", "version": 2, "id": id2, "schema": v2});
    assert_eq!(
        sr.get("/subjects/orders-value/versions/latest").await,
        (200, latest.clone())
    );
    assert_eq!(
        sr.get("/subjects/orders-value/versions/-1").await,
        (200, latest)
    );
    assert_eq!(
        sr.get("/subjects/orders-value/versions/1").await,
        (
            200,
            json!({"subject": "orders-value", "version": 1, "id": id1, "schema": v1})
        )
    );
    let raw = sr
        .http
        .get(format!(
            "{}/subjects/orders-value/versions/1/schema",
            sr.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 200);
    assert_eq!(raw.text().await.unwrap(), v1);

    // The same schema under another subject reuses the global id.
    assert_eq!(sr.register_ok("other-value", &v1).await, id1);
    assert_eq!(
        sr.get(&format!("/schemas/ids/{id1}/versions")).await,
        (
            200,
            json!([{"subject": "orders-value", "version": 1}, {"subject": "other-value", "version": 1}])
        )
    );
    assert_eq!(
        sr.get("/subjects").await,
        (200, json!(["orders-value", "other-value"]))
    );

    // Lookup.
    let (status, found) = sr
        .call(
            Method::POST,
            "/subjects/orders-value",
            Some(json!({ "schema": v2 })),
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        found,
        json!({"subject": "orders-value", "version": 2, "id": id2, "schema": v2})
    );
    let unknown = order(r#"{"name":"other","type":"long"}"#);
    assert_error(
        sr.call(
            Method::POST,
            "/subjects/orders-value",
            Some(json!({ "schema": unknown })),
        )
        .await,
        404,
        40403,
        "Schema not found",
    );
    assert_error(
        sr.call(
            Method::POST,
            "/subjects/nobody",
            Some(json!({ "schema": v1 })),
        )
        .await,
        404,
        40401,
        "Subject 'nobody' not found",
    );

    // Soft delete of a version: gone from reads and lookups, still there with deleted=true, id still resolves.
    assert_eq!(
        sr.delete("/subjects/orders-value/versions/2").await,
        (200, json!(2))
    );
    assert_eq!(
        sr.get("/subjects/orders-value/versions").await,
        (200, json!([1]))
    );
    assert_eq!(
        sr.get("/subjects/orders-value/versions?deleted=true").await,
        (200, json!([1, 2]))
    );
    assert_error(
        sr.get("/subjects/orders-value/versions/2").await,
        404,
        40402,
        "Version 2 not found",
    );
    assert_eq!(
        sr.get("/subjects/orders-value/versions/2?deleted=true")
            .await
            .0,
        200
    );
    assert_error(
        sr.call(
            Method::POST,
            "/subjects/orders-value",
            Some(json!({ "schema": v2 })),
        )
        .await,
        404,
        40403,
        "",
    );
    assert_eq!(sr.get(&format!("/schemas/ids/{id2}")).await.0, 200);
    assert_error(
        sr.delete("/subjects/orders-value/versions/2").await,
        404,
        40406,
        "soft deleted",
    );

    // Registering it again after the soft delete: a new version with the same id.
    assert_eq!(sr.register_ok("orders-value", &v2).await, id2);
    assert_eq!(
        sr.get("/subjects/orders-value/versions").await,
        (200, json!([1, 3]))
    );

    // Hard delete of a version needs a soft delete first.
    assert_error(
        sr.delete("/subjects/orders-value/versions/1?permanent=true")
            .await,
        404,
        40407,
        "not deleted first",
    );
    assert_eq!(
        sr.delete("/subjects/orders-value/versions/1").await,
        (200, json!(1))
    );
    assert_eq!(
        sr.delete("/subjects/orders-value/versions/1?permanent=true")
            .await,
        (200, json!(1))
    );
    assert_eq!(
        sr.get("/subjects/orders-value/versions?deleted=true").await,
        (200, json!([2, 3]))
    );

    // Subjects: soft, then hard.
    assert_error(
        sr.delete("/subjects/other-value?permanent=true").await,
        404,
        40405,
        "not deleted first",
    );
    assert_eq!(sr.delete("/subjects/other-value").await, (200, json!([1])));
    assert_eq!(sr.get("/subjects").await, (200, json!(["orders-value"])));
    assert_eq!(
        sr.get("/subjects?deleted=true").await,
        (200, json!(["orders-value", "other-value"]))
    );
    assert_error(
        sr.get("/subjects/other-value/versions").await,
        404,
        40401,
        "Subject 'other-value' not found",
    );
    assert_error(
        sr.delete("/subjects/other-value").await,
        404,
        40404,
        "soft deleted",
    );
    assert_eq!(
        sr.delete("/subjects/other-value?permanent=true").await,
        (200, json!([1]))
    );
    assert_eq!(
        sr.get("/subjects?deleted=true").await,
        (200, json!(["orders-value"]))
    );
    // id1 was only used by the versions now gone.
    assert_error(
        sr.get(&format!("/schemas/ids/{id1}")).await,
        404,
        40403,
        "not found",
    );
}

#[tokio::test]
async fn requests_with_json_or_without_content_type_are_accepted() {
    let sr = Registry::start().await;
    let schema = order(ID);
    let body = json!({ "schema": schema, "schemaType": "AVRO", "references": [] }).to_string();
    let mut ids = Vec::new();
    for content_type in [Some("application/json"), Some(SR_JSON), None] {
        let mut request = sr
            .http
            .post(format!("{}/subjects/plain/versions", sr.base))
            .body(body.clone());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{content_type:?}");
        let answer: Value = response.json().await.unwrap();
        ids.push(answer["id"].clone());
    }
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
}

#[tokio::test]
async fn config_global_and_per_subject() {
    let sr = Registry::start().await;
    assert_eq!(
        sr.get("/config").await,
        (200, json!({ "compatibilityLevel": "BACKWARD" }))
    );
    sr.set_level("/config", "FULL").await;
    assert_eq!(
        sr.get("/config").await,
        (200, json!({ "compatibilityLevel": "FULL" }))
    );

    assert_error(
        sr.get("/config/orders-value").await,
        404,
        40408,
        "does not have subject-level compatibility configured",
    );
    assert_eq!(
        sr.get("/config/orders-value?defaultToGlobal=true").await,
        (200, json!({ "compatibilityLevel": "FULL" }))
    );
    sr.set_level("/config/orders-value", "NONE").await;
    assert_eq!(
        sr.get("/config/orders-value").await,
        (200, json!({ "compatibilityLevel": "NONE" }))
    );
    assert_eq!(
        sr.get("/config").await,
        (200, json!({ "compatibilityLevel": "FULL" }))
    );

    // The subject's own level governs registration: NONE lets a breaking change in.
    let v1 = order(ID);
    let retyped = order(r#"{"name":"id","type":"long"}"#);
    sr.register_ok("orders-value", &v1).await;
    sr.register_ok("orders-value", &retyped).await;

    assert_eq!(
        sr.delete("/config/orders-value").await,
        (200, json!({ "compatibilityLevel": "NONE" }))
    );
    assert_error(sr.get("/config/orders-value").await, 404, 40408, "");

    for path in ["/config", "/config/orders-value"] {
        assert_error(
            sr.call(
                Method::PUT,
                path,
                Some(json!({ "compatibility": "SIDEWAYS" })),
            )
            .await,
            422,
            42203,
            "SIDEWAYS",
        );
    }
    assert_eq!(
        sr.get("/config").await,
        (200, json!({ "compatibilityLevel": "FULL" }))
    );
}

/// Versions 1 and 2 of subject `s`, and candidates whose verdict differs by level.
struct Evolution {
    v1: String,
    v2: String,
    /// `extra` loses its default: v2's data has it, v1's does not.
    require_extra: String,
    /// `note` (no default in v1) is dropped: v2 reads it with its default, v1 cannot.
    drop_note: String,
    /// A new field without a default.
    new_required: String,
    /// `id` (no default anywhere) is dropped.
    drop_id: String,
    /// `id` changes type.
    retyped: String,
    /// A new field with a default.
    add_defaulted: String,
}

fn evolution() -> Evolution {
    let note_d = r#"{"name":"note","type":"string","default":""}"#;
    let extra_d = r#"{"name":"extra","type":"int","default":0}"#;
    Evolution {
        v1: order(&format!(r#"{ID},{{"name":"note","type":"string"}}"#)),
        v2: order(&format!("{ID},{note_d},{extra_d}")),
        require_extra: order(&format!(r#"{ID},{note_d},{{"name":"extra","type":"int"}}"#)),
        drop_note: order(&format!("{ID},{extra_d}")),
        new_required: order(&format!(
            r#"{ID},{note_d},{extra_d},{{"name":"more","type":"int"}}"#
        )),
        drop_id: order(&format!("{note_d},{extra_d}")),
        retyped: order(&format!(
            r#"{{"name":"id","type":"long"}},{note_d},{extra_d}"#
        )),
        add_defaulted: order(&format!(
            r#"{ID},{note_d},{extra_d},{{"name":"more","type":"int","default":1}}"#
        )),
    }
}

#[tokio::test]
async fn compatibility_endpoint_for_every_level() {
    let sr = Registry::start().await;
    let e = evolution();
    sr.register_ok("s", &e.v1).await;
    sr.register_ok("s", &e.v2).await;

    // (level, compatible candidate, incompatible candidate or None)
    let cases: [(&str, &str, Option<&str>); 7] = [
        ("NONE", &e.retyped, None),
        ("BACKWARD", &e.require_extra, Some(&e.new_required)),
        ("BACKWARD_TRANSITIVE", &e.drop_note, Some(&e.require_extra)),
        ("FORWARD", &e.new_required, Some(&e.drop_id)),
        ("FORWARD_TRANSITIVE", &e.new_required, Some(&e.drop_note)),
        ("FULL", &e.drop_note, Some(&e.drop_id)),
        ("FULL_TRANSITIVE", &e.add_defaulted, Some(&e.drop_note)),
    ];
    for (level, compatible, incompatible) in cases {
        sr.set_level("/config/s", level).await;
        assert!(
            sr.compatible("s", "latest", compatible).await,
            "{level}: {compatible} should be compatible"
        );
        if let Some(incompatible) = incompatible {
            assert!(
                !sr.compatible("s", "latest", incompatible).await,
                "{level}: {incompatible} should be incompatible"
            );
        }
    }
    // Everything but NONE refuses a type change.
    for level in ["BACKWARD", "FORWARD", "FULL", "FULL_TRANSITIVE"] {
        sr.set_level("/config/s", level).await;
        assert!(!sr.compatible("s", "latest", &e.retyped).await, "{level}");
    }

    // A named version is compared alone; no version means the level's own choice, like latest.
    sr.set_level("/config/s", "BACKWARD_TRANSITIVE").await;
    assert!(sr.compatible("s", "2", &e.require_extra).await);
    assert!(!sr.compatible("s", "1", &e.require_extra).await);
    let (status, body) = sr
        .call(
            Method::POST,
            "/compatibility/subjects/s/versions?verbose=true",
            Some(json!({ "schema": e.require_extra })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["is_compatible"], json!(false));
    let messages = body["messages"].as_array().unwrap();
    assert!(
        messages
            .iter()
            .any(|m| m.as_str().unwrap().contains("version 1")),
        "{body}"
    );
    assert_error(
        sr.call(
            Method::POST,
            "/compatibility/subjects/s/versions/9",
            Some(json!({ "schema": e.v2 })),
        )
        .await,
        404,
        40402,
        "",
    );
    // A subject without versions accepts anything when asked about all its versions.
    let (status, body) = sr
        .call(
            Method::POST,
            "/compatibility/subjects/empty/versions",
            Some(json!({ "schema": e.v1 })),
        )
        .await;
    assert_eq!((status, body), (200, json!({ "is_compatible": true })));
}

#[tokio::test]
async fn an_incompatible_change_is_refused_with_409_and_adds_no_version() {
    let sr = Registry::start().await;
    let e = evolution();
    sr.register_ok("s", &e.v1).await;
    sr.register_ok("s", &e.v2).await;
    // Default level BACKWARD: a new field without a default cannot read v2's data.
    assert_error(
        sr.register("s", &e.new_required).await,
        409,
        409,
        "incompatible",
    );
    assert_eq!(sr.get("/subjects/s/versions").await, (200, json!([1, 2])));
    // BACKWARD_TRANSITIVE sees v1 too; BACKWARD lets this one in.
    let require_extra_and_more = order(&format!(
        r#"{ID},{{"name":"note","type":"string","default":""}},{{"name":"extra","type":"int"}},{{"name":"more","type":"int","default":1}}"#
    ));
    sr.set_level("/config/s", "BACKWARD_TRANSITIVE").await;
    assert_error(
        sr.register("s", &require_extra_and_more).await,
        409,
        409,
        "version 1",
    );
    sr.set_level("/config/s", "BACKWARD").await;
    sr.register_ok("s", &require_extra_and_more).await;
    assert_eq!(
        sr.get("/subjects/s/versions").await,
        (200, json!([1, 2, 3]))
    );
}

#[tokio::test]
async fn bad_requests_get_confluent_error_codes() {
    let sr = Registry::start().await;
    sr.register_ok("s", &order(ID)).await;

    let not_json = sr
        .http
        .post(format!("{}/subjects/s/versions", sr.base))
        .header("content-type", SR_JSON)
        .body("{this is not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status().as_u16(), 400);
    let body: Value = not_json.json().await.unwrap();
    assert_eq!(body["error_code"], json!(400), "{body}");

    assert_error(
        sr.register(
            "s",
            r#"{"type":"record","name":"Broken","fields":[{"name":"x","type":"no_such_type"}]}"#,
        )
        .await,
        422,
        42201,
        "Invalid schema",
    );
    assert_error(sr.register("s", "").await, 422, 42201, "Empty schema");
    assert_error(
        sr.call(
            Method::POST,
            "/subjects/s/versions",
            Some(json!({ "schema": "syntax = \"proto3\";", "schemaType": "PROTOBUF" })),
        )
        .await,
        422,
        42201,
        "PROTOBUF",
    );
    assert_error(
        sr.get("/subjects/unknown/versions").await,
        404,
        40401,
        "Subject 'unknown' not found.",
    );
    assert_error(
        sr.get("/subjects/unknown/versions/1").await,
        404,
        40401,
        "Subject 'unknown' not found.",
    );
    assert_error(
        sr.get("/subjects/s/versions/7").await,
        404,
        40402,
        "Version 7 not found.",
    );
    for bad in ["abc", "0", "-2", "99999999999"] {
        assert_error(
            sr.get(&format!("/subjects/s/versions/{bad}")).await,
            422,
            42202,
            "is not a valid version",
        );
    }
    assert_error(sr.get("/schemas/ids/424242").await, 404, 40403, "424242");
    assert_error(
        sr.call(
            Method::PUT,
            "/config",
            Some(json!({ "compatibility": "MOSTLY" })),
        )
        .await,
        422,
        42203,
        "Invalid compatibility level",
    );
    assert_error(sr.get("/no/such/route").await, 404, 404, "Not Found");
}

/// Registers `schema` from 20 tasks at once, each on its own warmed-up connection and released together by
/// a barrier; `subject_of(i)` names each task's subject. Returns the ids in task order.
async fn register_at_once(
    sr: &std::sync::Arc<Registry>,
    schema: &str,
    subject_of: impl Fn(usize) -> String,
) -> Vec<i64> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (sr, barrier) = (sr.clone(), barrier.clone());
        let (schema, subject) = (schema.to_owned(), subject_of(i));
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            http.get(format!("{}/schemas/types", sr.base))
                .send()
                .await
                .unwrap();
            barrier.wait().await;
            let response = http
                .post(format!("{}/subjects/{subject}/versions", sr.base))
                .header("content-type", SR_JSON)
                .body(json!({ "schema": schema }).to_string())
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            assert_eq!(status, 200, "task {i} under {subject}: {body}");
            body["id"].as_i64().unwrap()
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_registrations_of_one_schema_give_one_id_and_one_version() {
    let sr = std::sync::Arc::new(Registry::start().await);
    // Several rounds, since one round may by chance not overlap.
    for round in 0..5 {
        let schema = order(&format!(
            r#"{ID},{{"name":"n{round}","type":"int","default":0}}"#
        ));
        let subject = format!("solo-{round}");
        let ids = register_at_once(&sr, &schema, |_| subject.clone()).await;
        assert!(ids.iter().all(|id| *id == ids[0]), "ids: {ids:?}");
        assert_eq!(
            sr.get(&format!("/subjects/{subject}/versions")).await,
            (200, json!([1]))
        );

        // Half to one subject, half each to its own: one version in the shared subject, one global id.
        let schema = order(&format!(
            r#"{ID},{{"name":"m{round}","type":"int","default":0}}"#
        ));
        let ids = register_at_once(&sr, &schema, |i| {
            if i % 2 == 0 {
                format!("shared-{round}")
            } else {
                format!("own-{round}-{i}")
            }
        })
        .await;
        assert!(ids.iter().all(|id| *id == ids[0]), "ids: {ids:?}");
        assert_eq!(
            sr.get(&format!("/subjects/shared-{round}/versions")).await,
            (200, json!([1]))
        );
        let (_, users) = sr.get(&format!("/schemas/ids/{}/versions", ids[0])).await;
        assert_eq!(users.as_array().unwrap().len(), 11, "{users}");
    }
}

#[tokio::test]
async fn a_schema_that_only_changes_a_default_is_a_new_version() {
    let sr = Registry::start().await;
    let with_default = order(&format!(
        r#"{ID},{{"name":"note","type":"string","default":""}}"#
    ));
    let other_default = order(&format!(
        r#"{ID},{{"name":"note","type":"string","default":"n/a"}}"#
    ));
    let first = sr.register_ok("s", &with_default).await;
    let again = sr.register_ok("s", &with_default).await;
    let second = sr.register_ok("s", &other_default).await;
    assert_eq!(first, again);
    assert_ne!(first, second);
    assert_eq!(sr.get("/subjects/s/versions").await, (200, json!([1, 2])));
}

/// `n` bytes that do not compress (a long run of one letter would be compressed by Postgres and pass its
/// index limit).
fn incompressible(n: usize) -> String {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            char::from(b'a' + u8::try_from((state >> 33) % 26).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn subjects_with_control_characters_or_too_long_are_refused_with_42208() {
    let sr = Registry::start().await;
    let longest = incompressible(schemas::registry::MAX_SUBJECT_BYTES);
    // Over the limit, and over Postgres's limit on an index entry (2,704 bytes) too.
    let too_long = incompressible(3_000);
    for subject in [too_long.as_str(), "nul%00byte", "line%0Abreak", "del%7F"] {
        assert_error(
            sr.register(subject, &order(ID)).await,
            422,
            42208,
            "is not valid",
        );
        assert_error(
            sr.get(&format!("/subjects/{subject}/versions")).await,
            422,
            42208,
            "is not valid",
        );
        assert_error(
            sr.call(
                Method::POST,
                &format!("/subjects/{subject}"),
                Some(json!({ "schema": order(ID) })),
            )
            .await,
            422,
            42208,
            "is not valid",
        );
        assert_error(
            sr.call(
                Method::PUT,
                &format!("/config/{subject}"),
                Some(json!({ "compatibility": "NONE" })),
            )
            .await,
            422,
            42208,
            "is not valid",
        );
        let (_, answer) = sr.register(subject, &order(ID)).await;
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.len() < 200,
            "the subject is not echoed whole: {message}"
        );
    }
    assert_eq!(sr.get("/subjects").await, (200, json!([])));

    // The longest subject allowed, and names that are not ASCII, are fine.
    sr.register_ok(&longest, &order(ID)).await;
    sr.register_ok("commandes.événements-Commande", &order(ID))
        .await;
    assert_eq!(
        sr.get("/subjects").await,
        (200, json!(["commandes.événements-Commande", longest]))
    );
}

#[tokio::test]
async fn an_invalid_schema_is_not_echoed_back_whole() {
    let sr = Registry::start().await;
    let fields: Vec<String> = (0..5_000)
        .map(|i| {
            format!(
                r#"{{"name":"field_{i}","type":"string","doc":"{}"}}"#,
                "x".repeat(20)
            )
        })
        .chain([r#"{"name":"broken","type":"no_such_type"}"#.to_owned()])
        .collect();
    let schema = order(&fields.join(","));
    assert!(schema.len() > 100_000);
    let (status, body) = sr.register("s", &schema).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error_code"], json!(42201), "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.starts_with("Invalid schema"), "{message}");
    assert!(
        message.len() <= 2_000,
        "{} bytes of message for {} bytes of schema",
        message.len(),
        schema.len()
    );
}

#[tokio::test]
async fn with_an_admin_token_deletes_and_config_changes_need_it() {
    let sr = Registry::start_with(schemas::registry::RegistryConfig {
        admin_token: Some("s3cret".to_owned()),
        ..schemas::registry::RegistryConfig::default()
    })
    .await;
    // Registrations and reads stay open.
    let id = sr.register_ok("s", &order(ID)).await;
    assert_eq!(sr.get("/subjects").await, (200, json!(["s"])));
    assert_eq!(sr.get(&format!("/schemas/ids/{id}")).await.0, 200);

    let level = Some(json!({ "compatibility": "NONE" }));
    let guarded = [
        (Method::PUT, "/config", level.clone()),
        (Method::PUT, "/config/s", level.clone()),
        (Method::DELETE, "/config/s", None),
        (Method::DELETE, "/subjects/s", None),
        (
            Method::DELETE,
            "/subjects/s/versions/1?permanent=true",
            None,
        ),
    ];
    for (method, path, body) in &guarded {
        for token in [None, Some("wrong"), Some("s3cre"), Some("s3cret2")] {
            let answer = sr.call_as(token, method.clone(), path, body.clone()).await;
            assert_error(answer, 401, 40101, "admin token");
        }
    }
    assert_eq!(sr.get("/subjects/s/versions").await, (200, json!([1])));
    assert_eq!(
        sr.get("/config").await,
        (200, json!({ "compatibilityLevel": "BACKWARD" }))
    );

    for (method, path, body) in guarded {
        let (status, answer) = sr.call_as(Some("s3cret"), method, path, body).await;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    assert_eq!(
        sr.get("/config").await,
        (200, json!({ "compatibilityLevel": "NONE" }))
    );
    assert_error(sr.get("/subjects/s/versions").await, 404, 40401, "'s'");
}

#[tokio::test]
async fn with_no_deletes_every_delete_of_a_schema_is_refused_with_403() {
    let sr = Registry::start_with(schemas::registry::RegistryConfig {
        no_deletes: true,
        ..schemas::registry::RegistryConfig::default()
    })
    .await;
    sr.register_ok("s", &order(ID)).await;
    for path in [
        "/subjects/s",
        "/subjects/s?permanent=true",
        "/subjects/s/versions/1",
        "/subjects/s/versions/latest?permanent=true",
    ] {
        assert_error(sr.delete(path).await, 403, 40301, "--no-deletes");
    }
    assert_eq!(sr.get("/subjects/s/versions").await, (200, json!([1])));
    // A subject's compatibility level is configuration, not a schema: it can still be removed.
    sr.set_level("/config/s", "FULL").await;
    assert_eq!(
        sr.delete("/config/s").await,
        (200, json!({ "compatibilityLevel": "FULL" }))
    );
}

/// Holds the advisory lock that registrations under `subject` take, until the connection is returned.
async fn hold_subject_lock(
    sr: &Registry,
    subject: &str,
) -> sqlx::pool::PoolConnection<sqlx::Postgres> {
    let mut conn = sr.db.pool().acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(hashtextextended('orderflow.registry:' || $1, 0))")
        .bind(subject)
        .execute(&mut *conn)
        .await
        .unwrap();
    conn
}

async fn release_subject_lock(mut conn: sqlx::pool::PoolConnection<sqlx::Postgres>) {
    sqlx::query("SELECT pg_advisory_unlock_all()")
        .execute(&mut *conn)
        .await
        .unwrap();
}

/// Waits until a session of this database waits for an advisory lock.
async fn until_a_registration_waits(sr: &Registry) {
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks
             WHERE locktype = 'advisory' AND NOT granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(sr.db.pool())
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_request_that_outlasts_its_timeout_gets_a_retriable_503() {
    let sr = Registry::start_with(schemas::registry::RegistryConfig {
        request_timeout: std::time::Duration::from_millis(500),
        ..schemas::registry::RegistryConfig::default()
    })
    .await;
    let lock = hold_subject_lock(&sr, "s").await;
    // schema_registry_converter retries a 503 (and takes a 500 as final).
    assert_error(sr.register("s", &order(ID)).await, 503, 50301, "0.5 s");
    release_subject_lock(lock).await;
    // The request that timed out left nothing behind.
    assert_error(sr.get("/subjects/s/versions").await, 404, 40401, "'s'");
    sr.register_ok("s", &order(ID)).await;
    assert_eq!(sr.get("/subjects/s/versions").await, (200, json!([1])));
}

#[tokio::test]
async fn requests_beyond_the_concurrency_limit_are_refused_with_a_retriable_503() {
    let sr = std::sync::Arc::new(
        Registry::start_with(schemas::registry::RegistryConfig {
            max_concurrent_requests: 1,
            ..schemas::registry::RegistryConfig::default()
        })
        .await,
    );
    let lock = hold_subject_lock(&sr, "s").await;
    let stuck = tokio::spawn({
        let sr = sr.clone();
        async move { sr.register("s", &order(ID)).await }
    });
    until_a_registration_waits(&sr).await;
    assert_error(sr.get("/schemas/types").await, 503, 50302, "1 at a time");
    release_subject_lock(lock).await;
    assert_eq!(stuck.await.unwrap().0, 200);
    assert_eq!(sr.get("/schemas/types").await, (200, json!(["AVRO"])));
}
