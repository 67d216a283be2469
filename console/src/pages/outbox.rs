//! The outbox: its backlog, and the quarantined records with retry and discard.

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse as _, Redirect, Response};

use super::{Message, escape, percent_encode, problem_page, respond, tile};
use crate::actions::Operator;
use crate::{Console, Problem};

/// `GET /outbox`: the backlog and the quarantine, each record with retry and discard.
pub(crate) async fn get(
    State(console): State<Console>,
    Query(message): Query<Message>,
) -> Response {
    respond("outbox", body(&console, &message).await)
}

async fn body(console: &Console, message: &Message) -> Result<String, Problem> {
    let state = crate::outbox::read(console).await?;
    let oldest = state
        .backlog
        .oldest_age_seconds
        .map_or_else(|| "-".to_owned(), |s| format!("{s:.1} s"));
    let mut out = String::from("<h1>Outbox</h1>");
    if let Some(text) = &message.message {
        let _ = write!(out, "<p id=\"message\" class=\"ok\">{}</p>", escape(text));
    }
    out.push_str("<div class=\"tiles\">");
    out.push_str(&tile(
        "outbox-backlog",
        "unpublished",
        &state.backlog.backlog.to_string(),
        false,
    ));
    out.push_str(&tile("outbox-oldest", "oldest unpublished", &oldest, false));
    out.push_str(&tile(
        "outbox-quarantined",
        "quarantined",
        &state.backlog.quarantined.to_string(),
        state.backlog.quarantined > 0,
    ));
    out.push_str("</div><h2>Quarantined: refused by the broker for good</h2>");
    if state.quarantine.is_empty() {
        out.push_str("<p id=\"quarantine\" class=\"ok\">none</p>");
    } else {
        out.push_str(
            "<table id=\"quarantine\"><tr><th>id</th><th>topic</th><th>key</th><th class=\"num\">bytes</th>\
             <th>why</th><th class=\"num\">waiting behind it</th><th></th></tr>",
        );
        for q in &state.quarantine {
            let _ = write!(
                out,
                "<tr><td>{id}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td>\
                 <td><form method=\"post\" action=\"/outbox/quarantine/{id}/retry\">\
                 <button id=\"retry-{id}\">Retry</button></form> \
                 <form method=\"post\" action=\"/outbox/quarantine/{id}/discard\">\
                 <button id=\"discard-{id}\">Discard</button></form></td></tr>",
                escape(&q.topic),
                escape(&q.key),
                q.size,
                escape(&q.reason),
                q.waiting,
                id = q.id,
            );
        }
        out.push_str("</table>");
    }
    Ok(out)
}

/// `POST /outbox/quarantine/{id}/{retry|discard}` (the outbox page's buttons).
pub(crate) async fn decide(
    State(console): State<Console>,
    Path((id, name)): Path<(String, String)>,
    operator: Result<Operator, Problem>,
) -> Response {
    let done = match operator {
        Ok(operator) => match crate::outbox::decision(&name) {
            Ok(decision) => crate::outbox::decide(&console, &operator, &id, decision)
                .await
                .map(|()| decision),
            Err(problem) => Err(problem),
        },
        Err(problem) => Err(problem),
    };
    match done {
        Ok(decision) => Redirect::to(&format!(
            "/outbox?message={}",
            percent_encode(&format!("record {id}: {}", decision.action()))
        ))
        .into_response(),
        Err(problem) => problem_page(&problem),
    }
}
