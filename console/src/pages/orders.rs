//! Finding an order (`GET /orders?ref=`) and its page: status, saga timeline, each service's events, payment.

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse as _, Redirect, Response};
use serde::Deserialize;

use super::{escape, money, page, percent_encode, precise, problem_page};
use crate::order::OrderDetails;
use crate::{Console, Problem};

/// The search form's query.
#[derive(Deserialize)]
pub(crate) struct Search {
    #[serde(rename = "ref", default)]
    reference: String,
}

/// `GET /orders?ref=...`: to the order's page.
pub(crate) async fn search(Query(search): Query<Search>) -> Response {
    let reference = search.reference.trim();
    if reference.is_empty() {
        return problem_page(&Problem::bad_request(
            "give an order id (a UUID) or the idempotency key it was submitted with",
        ));
    }
    Redirect::to(&format!("/orders/{}", percent_encode(reference))).into_response()
}

/// `GET /orders/{reference}`.
pub(crate) async fn get(State(console): State<Console>, Path(reference): Path<String>) -> Response {
    match crate::order::find(&console.pool, &reference).await {
        Ok(details) => {
            let title = format!("order {}", details.order.order_id);
            page(&title, &render_order(&details), None).into_response()
        }
        Err(problem) => problem_page(&problem),
    }
}

fn render_order(d: &OrderDetails) -> String {
    let o = &d.order;
    let mut out = format!(
        "<h1>Order {}</h1><table id=\"order\"><tr><th>status</th><td id=\"order-status\">{}{}</td></tr>\
         <tr><th>idempotency key</th><td>{}</td></tr><tr><th>total</th><td>{} {}</td></tr>\
         <tr><th>placed</th><td>{}</td></tr><tr><th>ended</th><td>{}</td></tr></table>",
        o.order_id,
        escape(&o.status),
        o.cancel_reason
            .as_deref()
            .map_or_else(String::new, |r| format!(" ({})", escape(r))),
        escape(o.idempotency_key.as_deref().unwrap_or("-")),
        money(o.total_minor),
        escape(&o.currency),
        precise(o.placed_at),
        o.ended_at.map_or_else(|| "-".to_owned(), precise),
    );
    out.push_str("<h2>Saga</h2>");
    match &d.saga {
        None => out.push_str("<p id=\"saga\">not started yet</p>"),
        Some(s) => {
            let _ = write!(
                out,
                "<p id=\"saga\">{}; started {}, last step {}</p>",
                escape(&s.state),
                precise(s.started_at),
                precise(s.updated_at)
            );
        }
    }
    out.push_str(
        "<table id=\"timeline\"><tr><th>#</th><th>time</th><th>saga event</th><th>data</th></tr>",
    );
    for step in &d.timeline {
        let _ = write!(
            out,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td><pre>{}</pre></td></tr>",
            step.version,
            precise(step.recorded_at),
            escape(&step.event_type),
            escape(&step.event.to_string())
        );
    }
    out.push_str(
        "</table><h2>Services' events</h2><table id=\"events\"><tr><th>time</th><th>stream</th><th>#</th>\
         <th>event</th><th>data</th></tr>",
    );
    for e in &d.events {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td><pre>{}</pre></td></tr>",
            precise(e.recorded_at),
            escape(&e.stream),
            e.version,
            escape(&e.event_type),
            escape(&e.payload.to_string())
        );
    }
    out.push_str("</table><h2>Payment</h2>");
    match &d.payment {
        None => out.push_str("<p id=\"payment\">none</p>"),
        Some(p) => {
            let _ = write!(
                out,
                "<table id=\"payment\"><tr><th>status</th><td>{}</td></tr><tr><th>amount</th><td>{} {}</td></tr>\
                 <tr><th>captured</th><td>{}</td></tr><tr><th>refunded</th><td>{}</td></tr>\
                 <tr><th>at the provider</th><td>{}</td></tr></table>",
                escape(&p.status),
                money(p.amount_minor),
                escape(&p.currency),
                money(p.captured_minor),
                money(p.refunded_minor),
                escape(p.provider_ref.as_deref().unwrap_or("-"))
            );
        }
    }
    out
}
