//! Replays: the history, one replay's details, and starting a dry run.

use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::response::Response;

use super::{escape, json_block, respond, when};
use crate::actions::Operator;
use crate::{Console, Problem};

/// `GET /replays`: the history, and the form that starts a dry run.
pub(crate) async fn list(State(console): State<Console>) -> Response {
    respond(
        "replays",
        async {
            let rows = crate::history::replays(&console).await?;
            let mut out = String::from(
                "<h1>Replays</h1><p>Applied with <code>orderflow replay SOURCE --to-topic T | --to-group G \
                 --apply</code>.</p><table id=\"replays\"><tr><th>started</th><th>by</th><th>mode</th>\
                 <th>source</th><th>target</th><th class=\"num\">read</th><th class=\"num\">matched</th>\
                 <th class=\"num\">written</th><th>outcome</th></tr>",
            );
            for r in &rows {
                let _ = write!(
                    out,
                    "<tr><td><a href=\"/replays/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                     <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                     <td>{}</td></tr>",
                    r.id,
                    when(Some(r.started_at)),
                    escape(&r.run_by),
                    escape(&r.mode),
                    escape(&r.source_topic),
                    escape(&r.target),
                    r.read,
                    r.matched,
                    r.written,
                    escape(&r.outcome)
                );
            }
            out.push_str("</table>");
            out.push_str(DRY_RUN_FORM);
            Ok(out)
        }
        .await,
    )
}

/// The form that starts a replay's dry run.
const DRY_RUN_FORM: &str = "<h2>Start a dry run</h2><form method=\"post\" action=\"/replays/dry-run\" \
    id=\"dry-run\"><p><input name=\"source\" placeholder=\"source topic, e.g. orders.events\" required> \
    <input name=\"to_topic\" placeholder=\"target topic\"> or <input name=\"to_group\" \
    placeholder=\"target group, e.g. orders-view\"> <label><input type=\"checkbox\" name=\"rebuild\" \
    value=\"true\" style=\"width:auto\"> rebuild</label></p><p><input name=\"from_time\" \
    placeholder=\"from, RFC 3339 (optional)\"> <input name=\"to_time\" placeholder=\"to, RFC 3339 \
    (optional)\"> <input name=\"event_type\" placeholder=\"event type (optional)\"></p>\
    <button type=\"submit\">Dry run</button> <span>nothing is written to the target; the answer shows the \
    command that applies it</span></form>";

/// `POST /replays/dry-run` (the form on /replays): the dry run's counts, samples, and the command that
/// applies it.
pub(crate) async fn dry_run(
    State(console): State<Console>,
    operator: Result<Operator, Problem>,
    body: String,
) -> Response {
    respond(
        "dry run",
        async {
            let operator = operator?;
            let request = dry_run_request(&body)?;
            let done = crate::history::dry_run(&console, &operator, &request).await?;
            let id = done.report.id;
            let row = crate::history::replay(&console, &id.to_string()).await?;
            let mut out = format!(
                "<h1>Dry run <a href=\"/replays/{id}\">{id}</a></h1><p id=\"dry-run-counts\">{} records \
                 read, {} matched; nothing written.</p><h2>To apply it</h2><pre id=\"apply\">{}</pre>\
                 <h2>Samples</h2>",
                row.read,
                row.matched,
                escape(&done.apply)
            );
            for sample in &done.report.samples {
                let event = match &sample.event {
                    Ok(event) => serde_json::to_string_pretty(event).unwrap_or_default(),
                    Err(why) => format!("(not decoded: {why})"),
                };
                let _ = write!(
                    out,
                    "<h3>{}/{}</h3><pre>{}</pre>",
                    sample.partition,
                    sample.offset,
                    escape(&event)
                );
            }
            Ok(out)
        }
        .await,
    )
}

/// The dry run the form asks for.
fn dry_run_request(body: &str) -> Result<crate::history::DryRunRequest, Problem> {
    let mut request = crate::history::DryRunRequest::default();
    let time = |value: &str| {
        value.trim().parse().map(Some).map_err(|_| {
            Problem::bad_request(format!(
                "{value:?} is not an RFC 3339 time, e.g. 2026-12-01T10:00:00Z"
            ))
        })
    };
    for (key, value) in crate::actions::form_pairs(body) {
        if value.trim().is_empty() {
            continue;
        }
        match key.as_str() {
            "source" => request.source = value,
            "to_topic" => request.to_topic = Some(value),
            "to_group" => request.to_group = Some(value),
            "rebuild" => request.rebuild = value == "true",
            "from_time" => request.from_time = time(&value)?,
            "to_time" => request.to_time = time(&value)?,
            "event_type" => request.event_types.push(value),
            _ => {}
        }
    }
    Ok(request)
}

/// `GET /replays/{id}`.
pub(crate) async fn one(State(console): State<Console>, Path(id): Path<String>) -> Response {
    respond(
        "replay",
        async {
            let r = crate::history::replay(&console, &id).await?;
            let out = format!(
                "<h1>Replay {}</h1><table id=\"replay\"><tr><th>by</th><td>{}</td></tr>\
                 <tr><th>started</th><td>{}</td></tr><tr><th>finished</th><td>{}</td></tr>\
                 <tr><th>mode</th><td>{}</td></tr><tr><th>source</th><td>{}</td></tr>\
                 <tr><th>target</th><td>{}</td></tr><tr><th>read / matched / written</th><td>{} / {} / {}</td></tr>\
                 <tr><th>outcome</th><td>{}{}</td></tr></table><h2>Arguments</h2>{}<h2>Differences (a rebuild)</h2>{}\
                 <p>Resume a stopped replay with <code>orderflow replay resume {}</code>.</p>",
                r.id,
                escape(&r.run_by),
                when(Some(r.started_at)),
                when(r.finished_at),
                escape(&r.mode),
                escape(&r.source_topic),
                escape(&r.target),
                r.read,
                r.matched,
                r.written,
                escape(&r.outcome),
                r.error
                    .as_deref()
                    .map_or_else(String::new, |e| format!(": {}", escape(e))),
                json_block("arguments", Some(&r.arguments)),
                json_block("differences", r.differences.as_ref()),
                r.id
            );
            Ok(out)
        }
        .await,
    )
}
