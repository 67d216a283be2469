//! Dead letters: the topics, one topic's letters with a form to redrive a selection, one letter decoded.

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse as _, Redirect, Response};

use super::{Message, escape, page, percent_encode, problem_page, respond};
use crate::actions::Operator;
use crate::{Console, Problem};

/// `GET /dead-letters`: the dead-letter topics, with how many records each holds.
pub(crate) async fn topics(State(console): State<Console>) -> Response {
    let counts = crate::overview::dead_letters(&console).await;
    let mut out = String::from(
        "<h1>Dead letters</h1><table id=\"dead-letter-topics\"><tr><th>topic</th><th class=\"num\">records</th></tr>",
    );
    for topic in crate::dead_letters::topics(&console) {
        let records = counts
            .iter()
            .find(|c| c.topic == topic)
            .map_or(0, |c| c.records);
        let _ = write!(
            out,
            "<tr><td><a href=\"/dead-letters/{}\">{}</a></td><td class=\"num{}\">{records}</td></tr>",
            percent_encode(&topic),
            escape(&topic),
            if records > 0 { " bad" } else { "" }
        );
    }
    out.push_str("</table>");
    page("dead letters", &out, None).into_response()
}

/// `GET /dead-letters/{topic}`: its dead letters, with a form to redrive a selection.
pub(crate) async fn list(
    State(console): State<Console>,
    Path(topic): Path<String>,
    Query(message): Query<Message>,
) -> Response {
    respond(&topic, list_page(&console, &topic, &message).await)
}

async fn list_page(console: &Console, topic: &str, message: &Message) -> Result<String, Problem> {
    let letters = crate::dead_letters::list(console, topic).await?;
    let mut out = format!("<h1>Dead letters of {}</h1>", escape(topic));
    if let Some(text) = &message.message {
        let _ = write!(out, "<p id=\"message\" class=\"ok\">{}</p>", escape(text));
    }
    if letters.is_empty() {
        out.push_str("<p id=\"letters\" class=\"ok\">none</p>");
        return Ok(out);
    }
    let _ = write!(
        out,
        "<form method=\"post\" action=\"/dead-letters/{}/redrive\"><table id=\"letters\"><tr><th></th>\
         <th>position</th><th>key</th><th>from</th><th>group</th><th>why</th><th class=\"num\">attempts</th></tr>",
        percent_encode(topic)
    );
    for l in &letters {
        let position = format!("{}/{}", l.partition, l.offset);
        let _ = write!(
            out,
            "<tr><td><input type=\"checkbox\" name=\"letter\" value=\"{position}\" aria-label=\"{position}\"></td>\
             <td><a href=\"/dead-letters/{}/{position}\">{position}</a></td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td class=\"num\">{}</td></tr>",
            percent_encode(topic),
            escape(l.key.as_deref().unwrap_or("")),
            escape(l.source.as_deref().unwrap_or("")),
            escape(l.consumer_group.as_deref().unwrap_or("")),
            escape(&format!(
                "{} {}",
                l.error_class.as_deref().unwrap_or(""),
                l.error_message
                    .as_deref()
                    .or(l.unreadable.as_deref())
                    .unwrap_or("")
            )),
            l.attempts.map_or_else(String::new, |a| a.to_string())
        );
    }
    out.push_str(
        "</table><button type=\"submit\" id=\"redrive\">Redrive the chosen ones</button> \
         <span>to their source topics, as <code>orderflow dlq redrive</code> does; a consumer that applied one \
         already skips it</span></form>",
    );
    Ok(out)
}

/// `GET /dead-letters/{topic}/{partition}/{offset}`: one dead letter, decoded, with its envelope.
pub(crate) async fn one(
    State(console): State<Console>,
    Path((topic, partition, offset)): Path<(String, String, String)>,
) -> Response {
    respond(
        &topic,
        one_page(&console, &topic, &partition, &offset).await,
    )
}

async fn one_page(
    console: &Console,
    topic: &str,
    partition: &str,
    offset: &str,
) -> Result<String, Problem> {
    let (p, o) = crate::dead_letters::position(partition, offset)?;
    let shown = crate::dead_letters::show(console, topic, p, o).await?;
    let pretty =
        |value: &serde_json::Value| serde_json::to_string_pretty(value).unwrap_or_default();
    let value = match (&shown.value, &shown.undecoded) {
        (Some(value), _) => pretty(value),
        (None, why) => format!("(not decoded: {})", why.as_deref().unwrap_or("no value")),
    };
    let position = format!("{partition}/{offset}");
    let out = format!(
        "<h1>Dead letter {}/{position}</h1><h2>Envelope</h2><pre id=\"envelope\">{}</pre>\
         <h2>Value</h2><pre id=\"value\">{}</pre><h2>Headers</h2><pre id=\"headers\">{}</pre>\
         <form method=\"post\" action=\"/dead-letters/{}/redrive\"><input type=\"hidden\" name=\"letter\" \
         value=\"{position}\"><button type=\"submit\" id=\"redrive\">Redrive this one</button></form>",
        escape(topic),
        escape(&pretty(&serde_json::Value::Object(shown.envelope.clone()))),
        escape(&value),
        escape(&pretty(&serde_json::Value::Object(shown.headers.clone()))),
        percent_encode(topic),
    );
    Ok(out)
}

/// `POST /dead-letters/{topic}/redrive` (the pages' form): redrives the chosen dead letters, then back to
/// the topic's page with what happened.
pub(crate) async fn redrive(
    State(console): State<Console>,
    Path(topic): Path<String>,
    operator: Result<Operator, Problem>,
    body: String,
) -> Response {
    let operator = match operator {
        Ok(operator) => operator,
        Err(problem) => return problem_page(&problem),
    };
    let positions: Result<Vec<(i32, i64)>, Problem> = crate::actions::form_pairs(&body)
        .into_iter()
        .filter(|(key, _)| key == "letter")
        .map(|(_, value)| {
            let (p, o) = value.split_once('/').unwrap_or((&value, ""));
            crate::dead_letters::position(p, o)
        })
        .collect();
    let redriven = match positions {
        Ok(positions) => crate::dead_letters::redrive(&console, &operator, &topic, positions).await,
        Err(problem) => Err(problem),
    };
    match redriven {
        Ok(n) => Redirect::to(&format!(
            "/dead-letters/{}?message={}",
            percent_encode(&topic),
            percent_encode(&format!("redriven {n} dead letter(s)"))
        ))
        .into_response(),
        Err(problem) => problem_page(&problem),
    }
}
