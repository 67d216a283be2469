//! The sagas needing attention, each that retrying can help with its retry button.

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse as _, Redirect, Response};

use super::{Message, escape, percent_encode, problem_page, respond, when};
use crate::actions::Operator;
use crate::{Console, Problem};

/// `GET /sagas/attention`: the escalated sagas, each that retrying can help with its retry button.
pub(crate) async fn get(
    State(console): State<Console>,
    Query(message): Query<Message>,
) -> Response {
    respond(
        "sagas needing attention",
        async {
            let sagas = crate::attention::list(&console).await?;
            let mut out = String::from("<h1>Sagas needing attention</h1>");
            if let Some(text) = &message.message {
                let _ = write!(out, "<p id=\"message\" class=\"ok\">{}</p>", escape(text));
            }
            if sagas.is_empty() {
                out.push_str("<p id=\"attention\" class=\"ok\">none</p>");
                return Ok(out);
            }
            out.push_str(
                "<table id=\"attention\"><tr><th>order</th><th>escalated</th><th>failed step</th><th></th>\
                 <th class=\"num\">attempts</th><th>last failure</th><th></th></tr>",
            );
            for s in &sagas {
                let action = if s.retryable {
                    format!(
                        "<form method=\"post\" action=\"/sagas/{o}/retry\">\
                         <button id=\"retry-{o}\">Retry {}</button></form>",
                        escape(&s.step),
                        o = s.order_id,
                    )
                } else {
                    "retrying cannot help: a person decides".to_owned()
                };
                let _ = write!(
                    out,
                    "<tr><td><a href=\"/orders/{o}\">{o}</a></td><td>{}</td><td>{}</td><td>{}</td>\
                     <td class=\"num\">{}</td><td>{}</td><td>{action}</td></tr>",
                    when(Some(s.escalated_at)),
                    escape(&s.step),
                    if s.compensating { "compensation" } else { "" },
                    s.attempts,
                    escape(&s.last_error),
                    o = s.order_id,
                );
            }
            out.push_str("</table>");
            Ok(out)
        }
        .await,
    )
}

/// `POST /sagas/{order_id}/retry` (the attention page's buttons).
pub(crate) async fn retry(
    State(console): State<Console>,
    Path(order_id): Path<String>,
    operator: Result<Operator, Problem>,
) -> Response {
    let retried = match operator {
        Ok(operator) => crate::attention::retry(&console, &operator, &order_id).await,
        Err(problem) => Err(problem),
    };
    match retried {
        Ok(retried) => Redirect::to(&format!(
            "/sagas/attention?message={}",
            percent_encode(&format!(
                "order {}: {} sent again",
                retried.order_id, retried.step
            ))
        ))
        .into_response(),
        Err(problem) => problem_page(&problem),
    }
}
