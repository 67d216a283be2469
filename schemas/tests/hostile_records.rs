//! Records built by hand to hurt a consumer: they must be refused as `SchemaError::Decode` (dead-lettered)
//! without the decoder allocating what they claim, and unknown schema ids must not grow the codec's memory
//! without bound.
//!
//! A binary of its own: apache-avro's allocation limit is set once per process, by the first codec or the
//! first decode, so no other test may decode before these do.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use schemas::codec::{MAX_CACHED_SCHEMA_IDS, MAX_DECODE_ALLOCATION_BYTES, MAX_RECORD_BYTES};
use schemas::{AvroCodec, SchemaError};
use serde_json::json;

/// A record whose only field is an array, so that its body starts with the array's first block count.
const WITH_ARRAY: &str = r#"{"type":"record","name":"Hostile","namespace":"orderflow.test","fields":[{"name":"items","type":{"type":"array","items":"long"}}]}"#;

/// Registers `schema` under `subject` over Confluent's REST API and returns its id.
async fn register(url: &str, subject: &str, schema: &str) -> u32 {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{url}/subjects/{subject}/versions"))
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(json!({ "schema": schema }).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    u32::try_from(answer["id"].as_i64().unwrap()).unwrap()
}

/// Avro's variable-length zig-zag encoding of a long.
fn zigzag(n: i64) -> Vec<u8> {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    let mut out = Vec::new();
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Confluent's wire format: magic byte 0, the schema id, the body.
fn wire(schema_id: u32, body: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0];
    bytes.extend_from_slice(&schema_id.to_be_bytes());
    bytes.extend_from_slice(body);
    bytes
}

#[tokio::test]
async fn a_record_claiming_a_huge_array_is_refused_before_it_is_allocated() {
    let registry = common::Registry::start().await;
    let schema_id = register(&registry.url, "hostile-value", WITH_ARRAY).await;
    let codec = AvroCodec::new(&registry.url).unwrap();
    // Asking sets the limit when nothing has: ask with apache-avro's own default.
    assert_eq!(
        apache_avro::util::max_allocation_bytes(apache_avro::util::DEFAULT_MAX_ALLOCATION_BYTES),
        MAX_DECODE_ALLOCATION_BYTES,
        "the codec sets apache-avro's limit"
    );

    let item = size_of::<apache_avro::types::Value>();
    for claimed in [
        // The review's example: 5 * 10^8 items.
        500_000_000,
        // Just below apache-avro's default limit of 512 MiB: that default let it through, and the
        // decoder reserved 512 MiB for a record of 10 bytes before it ran out of input.
        apache_avro::util::DEFAULT_MAX_ALLOCATION_BYTES / item - 1,
        // Just above the limit this codec sets.
        MAX_DECODE_ALLOCATION_BYTES / item + 1,
    ] {
        let bytes = wire(schema_id, &zigzag(i64::try_from(claimed).unwrap()));
        assert!(bytes.len() <= 10, "{} bytes", bytes.len());
        match codec.decode(&bytes).await {
            Err(SchemaError::Decode(message)) => assert!(
                message.contains(&format!("maximum allowed: {MAX_DECODE_ALLOCATION_BYTES}")),
                "{claimed} items: refused by the limit, not by running out of input: {message}"
            ),
            other => panic!("{claimed} items: {other:?}"),
        }
    }

    // A legitimate array as long as the largest record can hold still decodes: one byte per item.
    let items = i64::try_from(MAX_RECORD_BYTES - 16).unwrap();
    let mut body = zigzag(items);
    body.extend(std::iter::repeat_n(0u8, MAX_RECORD_BYTES - 16));
    body.push(0);
    let bytes = wire(schema_id, &body);
    assert!(bytes.len() <= MAX_RECORD_BYTES);
    match codec.decode(&bytes).await {
        // Not one of orderflow's records, so it is unknown once decoded: the body itself passed.
        Err(SchemaError::UnknownEventType(name)) => assert_eq!(name, "orderflow.test.Hostile"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_largest_record_is_at_least_what_our_producers_send() {
    let producer = producers::ProducerConfig::default();
    assert!(usize::try_from(producer.max_message_bytes).unwrap() <= MAX_RECORD_BYTES);
}

/// Serves `GET /schemas/ids/{id}` with Confluent's 40403 for every id, and counts the requests per id.
async fn registry_without_schemas() -> (String, Arc<Mutex<HashMap<u32, usize>>>) {
    use axum::extract::{Path, State};
    let asked = Arc::new(Mutex::new(HashMap::<u32, usize>::new()));
    let app = axum::Router::new()
        .route(
            "/schemas/ids/{id}",
            axum::routing::get(
                |State(asked): State<Arc<Mutex<HashMap<u32, usize>>>>, Path(id): Path<u32>| async move {
                    *asked.lock().unwrap().entry(id).or_default() += 1;
                    (
                        axum::http::StatusCode::NOT_FOUND,
                        json!({"error_code": 40403, "message": format!("Schema {id} not found")})
                            .to_string(),
                    )
                },
            ),
        )
        .with_state(asked.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, asked)
}

#[tokio::test]
async fn unknown_schema_ids_do_not_grow_the_decoder_cache_without_bound() {
    let (url, asked) = registry_without_schemas().await;
    let codec = AvroCodec::new(&url).unwrap();
    let first = 1_u32;
    let decode = |id: u32| {
        let bytes = wire(id, &[0]);
        let codec = &codec;
        async move {
            match codec.decode(&bytes).await {
                Err(SchemaError::Decode(message)) => assert!(message.contains("404"), "{message}"),
                other => panic!("schema {id}: {other:?}"),
            }
        }
    };
    decode(first).await;
    decode(first).await;
    assert_eq!(asked.lock().unwrap()[&first], 1, "the answer is cached");

    // As many other ids as the cache holds: the first one's entry must have been let go.
    for id in (first + 1..).take(MAX_CACHED_SCHEMA_IDS) {
        decode(id).await;
    }
    decode(first).await;
    assert_eq!(
        asked.lock().unwrap()[&first],
        2,
        "after {MAX_CACHED_SCHEMA_IDS} other ids the first is asked for again"
    );
}
