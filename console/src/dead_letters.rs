//! Dead letters: per topic, one decoded to JSON with its `dlq.*` envelope, and redriving one or a selection
//! through the same idempotent path as `orderflow dlq redrive` ([`ops::dead_letters::redrive`]), recorded in
//! `operator_actions`.

use axum::Json;
use axum::extract::{Path, State};
use consumers::dlq::{self, DeadLetter};
use ops::audit::Via;
use ops::dead_letters::Selection;
use producers::topics::Topics;
use serde::{Deserialize, Serialize};

use crate::actions::Operator;
use crate::{Console, Problem};

/// One dead letter in a list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Letter {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    /// Where it was read from, the group that failed it and why; `None` when its `dlq.*` headers do not
    /// read (then `unreadable` says why).
    pub source: Option<String>,
    pub consumer_group: Option<String>,
    pub error_class: Option<String>,
    pub error_message: Option<String>,
    pub attempts: Option<u32>,
    pub unreadable: Option<String>,
}

/// One dead letter whole.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Shown {
    #[serde(flatten)]
    pub letter: Letter,
    /// Its `dlq.*` headers.
    pub envelope: serde_json::Map<String, serde_json::Value>,
    /// The headers it had before it was dead-lettered.
    pub headers: serde_json::Map<String, serde_json::Value>,
    /// Its value decoded through the schema registry; `None` when it did not decode (`undecoded` says why).
    pub value: Option<serde_json::Value>,
    pub undecoded: Option<String>,
}

impl Letter {
    fn of(letter: &DeadLetter) -> Self {
        let r = &letter.record;
        let envelope = letter.envelope.as_ref().ok();
        Self {
            partition: r.partition,
            offset: r.offset,
            key: r
                .key
                .as_deref()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            source: envelope.map(|e| {
                format!(
                    "{}/{}/{}",
                    e.source_topic, e.source_partition, e.source_offset
                )
            }),
            consumer_group: envelope.map(|e| e.consumer_group.clone()),
            error_class: envelope.map(|e| e.error_class.to_string()),
            error_message: envelope.map(|e| e.error_message.clone()),
            attempts: envelope.map(|e| e.attempts),
            unreadable: letter.envelope.as_ref().err().map(ToString::to_string),
        }
    }
}

/// The pipeline's dead-letter topics: one per topic its consumer groups read.
pub(crate) fn topics(console: &Console) -> Vec<String> {
    crate::overview::groups(&console.config.topics, &console.config.group_prefix)
        .into_iter()
        .flat_map(|(_, topics)| topics)
        .map(|topic| Topics::dead_letters(&topic))
        .collect()
}

/// `topic`, when it is one of the pipeline's dead-letter topics.
fn known(console: &Console, topic: &str) -> Result<(), Problem> {
    if topics(console).iter().any(|t| t == topic) {
        Ok(())
    } else {
        Err(Problem::not_found(format!(
            "{topic} is not a dead-letter topic of this pipeline (they are {})",
            topics(console).join(", ")
        )))
    }
}

/// The dead letters of `topic`.
///
/// # Errors
/// 404 for a topic that is not one of the pipeline's dead-letter topics.
pub(crate) async fn list(console: &Console, topic: &str) -> Result<Vec<Letter>, Problem> {
    known(console, topic)?;
    // A dead-letter topic is created with its first dead letter.
    let letters = match dlq::list(&console.kafka, topic).await {
        Ok(letters) => letters,
        Err(e) if e.to_string().contains("does not exist") => Vec::new(),
        Err(e) => return Err(Problem::unavailable(e)),
    };
    Ok(letters.iter().map(Letter::of).collect())
}

/// The dead letter at `partition`/`offset` of `topic`, decoded.
///
/// # Errors
/// 404 for an unknown topic or position.
pub(crate) async fn show(
    console: &Console,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<Shown, Problem> {
    known(console, topic)?;
    let letters = dlq::list(&console.kafka, topic)
        .await
        .map_err(Problem::unavailable)?;
    let letter = letters
        .iter()
        .find(|l| l.record.partition == partition && l.record.offset == offset)
        .ok_or_else(|| {
            Problem::not_found(format!("no dead letter at {topic}/{partition}/{offset}"))
        })?;
    let (envelope, headers) = letter
        .record
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .partition(|(k, _)| k.starts_with("dlq."));
    let value = match &console.config.codec {
        Some(codec) => codec
            .decode(&letter.record.payload)
            .await
            .map(|d| d.event)
            .map_err(|e| e.to_string()),
        None => Err("no schema registry configured".to_owned()),
    };
    let (value, undecoded) = match value {
        Ok(value) => (Some(value), None),
        Err(why) => (None, Some(why)),
    };
    Ok(Shown {
        letter: Letter::of(letter),
        envelope,
        headers,
        value,
        undecoded,
    })
}

/// `GET /api/dead-letters/{topic}`.
pub(crate) async fn get_list(
    State(console): State<Console>,
    Path(topic): Path<String>,
) -> Result<Json<Vec<Letter>>, Problem> {
    Ok(Json(list(&console, &topic).await?))
}

/// `GET /api/dead-letters/{topic}/{partition}/{offset}`.
pub(crate) async fn get_one(
    State(console): State<Console>,
    Path((topic, partition, offset)): Path<(String, String, String)>,
) -> Result<Json<Shown>, Problem> {
    let (partition, offset) = position(&partition, &offset)?;
    Ok(Json(show(&console, &topic, partition, offset).await?))
}

/// A partition and an offset from the path.
pub(crate) fn position(partition: &str, offset: &str) -> Result<(i32, i64), Problem> {
    match (partition.parse::<i32>(), offset.parse::<i64>()) {
        (Ok(p), Ok(o)) if p >= 0 && o >= 0 => Ok((p, o)),
        _ => Err(Problem::bad_request(format!(
            "{partition}/{offset} is not a partition and an offset (two numbers from 0)"
        ))),
    }
}

/// The body of `POST /api/dead-letters/{topic}/redrive`: the dead letters to redrive, by position.
#[derive(Debug, Deserialize)]
pub(crate) struct RedriveRequest {
    letters: Vec<Position>,
}

#[derive(Debug, Deserialize)]
struct Position {
    partition: i32,
    offset: i64,
}

/// What a redrive did.
#[derive(Debug, Serialize)]
pub(crate) struct Redriven {
    redriven: usize,
}

/// `POST /api/dead-letters/{topic}/redrive`.
pub(crate) async fn post_redrive(
    State(console): State<Console>,
    Path(topic): Path<String>,
    operator: Operator,
    body: Result<Json<RedriveRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Redriven>, Problem> {
    let request =
        crate::problem::json_body(body, r#"{"letters": [{"partition": 0, "offset": 3}, ...]}"#)?;
    let positions = request
        .letters
        .iter()
        .map(|p| (p.partition, p.offset))
        .collect();
    let redriven = redrive(&console, &operator, &topic, positions).await?;
    Ok(Json(Redriven { redriven }))
}

/// Redrives the dead letters at `positions` of `topic` (at least one), recorded as `operator`'s action.
///
/// # Errors
/// 400 for no position, 404 for an unknown topic or position, 409 for a record this runtime did not
/// dead-letter; nothing published then.
pub(crate) async fn redrive(
    console: &Console,
    operator: &Operator,
    topic: &str,
    positions: Vec<(i32, i64)>,
) -> Result<usize, Problem> {
    known(console, topic)?;
    if positions.is_empty() {
        return Err(Problem::bad_request("choose the dead letters to redrive"));
    }
    ops::dead_letters::redrive(
        &console.pool,
        &console.kafka,
        topic,
        &Selection::Only(positions),
        Via::Console,
        operator.actor(),
    )
    .await
    .map_err(|e| match e {
        ops::OperatorError::NotFound(why) => Problem::not_found(why),
        ops::OperatorError::BadInput(why) => Problem::conflict(why),
        other => Problem::unavailable(other),
    })
}
