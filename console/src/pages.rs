//! The pages: server-rendered HTML, no script, no external font or stylesheet. The overview reloads itself
//! every 10 s.

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::actions::Operator;
use crate::order::OrderDetails;
use crate::overview::{LagSample, Minute, Overview};
use crate::{Console, Problem};

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d232a}\
header{background:#1d3b58;color:#fff;padding:10px 20px;display:flex;gap:24px;align-items:center}\
header a{color:#fff;text-decoration:none;font-weight:600}main{padding:16px 20px;max-width:1100px}\
h2{font-size:16px;margin:20px 0 8px}table{border-collapse:collapse;margin-bottom:8px}\
td,th{border-bottom:1px solid #dde3ea;padding:4px 12px 4px 0;text-align:left;vertical-align:top}\
th{color:#5a6672;font-weight:600}.num{text-align:right}.bad{color:#b3261e;font-weight:600}\
.ok{color:#1e7b34}.tiles{display:flex;flex-wrap:wrap;gap:12px}\
.tile{border:1px solid #dde3ea;border-radius:6px;padding:10px 14px;min-width:150px}\
.tile b{display:block;font-size:22px}pre{margin:0;font-size:12px;white-space:pre-wrap}\
form{display:inline}input{font:inherit;padding:3px 6px;width:320px}.note{color:#5a6672;font-size:12px}";

/// Escapes `text` for HTML text and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page around `body`; `refresh` reloads it every that many seconds.
fn page(title: &str, body: &str, refresh: Option<u32>) -> Html<String> {
    let refresh = refresh.map_or_else(String::new, |s| {
        format!("<meta http-equiv=\"refresh\" content=\"{s}\">")
    });
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">{refresh}\
         <title>{} · orderflow console</title><style>{STYLE}</style></head><body><header>\
         <a href=\"/\">orderflow console</a><a href=\"/sagas/attention\">attention</a>\
         <a href=\"/dead-letters\">dead letters</a>\
         <a href=\"/outbox\">outbox</a><a href=\"/replays\">replays</a>\
         <a href=\"/reconciliations\">reconciliation</a>\
         <form action=\"/orders\" method=\"get\">\
         <input name=\"ref\" placeholder=\"order id or idempotency key\" aria-label=\"order\"></form>\
         </header><main>{body}</main></body></html>",
        escape(title)
    ))
}

/// A page saying what went wrong, with the problem's status.
fn problem_page(problem: &Problem) -> Response {
    let body = format!(
        "<h1>{}</h1><p class=\"bad\" id=\"problem\">{}</p>",
        escape(problem.title),
        escape(&problem.detail)
    );
    (problem.status, page(problem.title, &body, None)).into_response()
}

/// The page titled `title` around `body`, or the page of the problem that kept it from being made.
fn respond(title: &str, body: Result<String, Problem>) -> Response {
    match body {
        Ok(body) => page(title, &body, None).into_response(),
        Err(problem) => problem_page(&problem),
    }
}

fn tile(id: &str, label: &str, value: &str, bad: bool) -> String {
    format!(
        "<div class=\"tile\" id=\"{id}\"><b class=\"{}\">{}</b>{}</div>",
        if bad { "bad" } else { "" },
        escape(value),
        escape(label)
    )
}

/// `GET /`.
pub(crate) async fn overview(State(console): State<Console>) -> Response {
    match crate::overview::read(&console).await {
        Ok(overview) => page("overview", &render_overview(&overview), Some(10)).into_response(),
        Err(problem) => problem_page(&problem),
    }
}

fn render_overview(o: &Overview) -> String {
    let mut out = String::from(
        "<h1>Overview</h1><h2>Orders placed in the last hour</h2><div class=\"tiles\">",
    );
    for state in ["placed", "completed", "cancelled"] {
        let n = o.orders_last_hour.get(state).copied().unwrap_or(0);
        out.push_str(&tile(
            &format!("orders-{state}"),
            state,
            &n.to_string(),
            false,
        ));
    }
    out.push_str("</div>");
    out.push_str(&orders_chart(&o.orders_per_minute, chrono::Utc::now()));
    out.push_str("<h2>Sagas and the outbox</h2><div class=\"tiles\">");
    out.push_str(&tile(
        "sagas-in-flight",
        "sagas in flight",
        &o.sagas_in_flight.to_string(),
        false,
    ));
    out.push_str(&format!(
        "<a href=\"/sagas/attention\">{}</a>",
        tile(
            "sagas-needing-attention",
            "sagas needing attention",
            &o.sagas_needing_attention.to_string(),
            o.sagas_needing_attention > 0,
        )
    ));
    out.push_str(&tile(
        "outbox-backlog",
        "outbox backlog",
        &o.outbox.backlog.to_string(),
        false,
    ));
    let oldest = o
        .outbox
        .oldest_age_seconds
        .map_or_else(|| "-".to_owned(), |s| format!("{s:.1} s"));
    out.push_str(&tile(
        "outbox-oldest",
        "oldest in the outbox",
        &oldest,
        false,
    ));
    out.push_str(&tile(
        "outbox-quarantined",
        "quarantined",
        &o.outbox.quarantined.to_string(),
        o.outbox.quarantined > 0,
    ));
    out.push_str(&tile(
        "notifications-given-up",
        "notifications given up",
        &o.notifications_given_up.to_string(),
        o.notifications_given_up > 0,
    ));
    out.push_str(
        "</div><h2>Consumer lag</h2><table id=\"consumer-lag\"><tr><th>group</th><th>topics</th>\
         <th class=\"num\">lag</th></tr>",
    );
    for g in &o.consumer_lag {
        let lag = g
            .lag
            .map_or_else(|| "not running yet".to_owned(), |l| l.to_string());
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            escape(&g.group),
            escape(&g.topics.join(", ")),
            escape(&lag)
        );
    }
    out.push_str(
        "</table><p class=\"note\">Records not yet committed by the group. Groups commit their offsets every \
         few seconds, so an idle pipeline can show a small lag until the next commit.</p>",
    );
    out.push_str(&lag_chart(&o.lag_history));
    out.push_str("<h2>Dead letters</h2>");
    if o.dead_letters.is_empty() {
        out.push_str("<p id=\"dead-letters\" class=\"ok\">none</p>");
    } else {
        out.push_str(
            "<table id=\"dead-letters\"><tr><th>topic</th><th class=\"num\">records</th></tr>",
        );
        for d in &o.dead_letters {
            let _ = write!(
                out,
                "<tr><td><a href=\"/dead-letters/{}\">{}</a></td><td class=\"num bad\">{}</td></tr>",
                percent_encode(&d.topic),
                escape(&d.topic),
                d.records
            );
        }
        out.push_str("</table>");
    }
    out.push_str("<h2>Replication</h2>");
    if o.replication.is_empty() {
        out.push_str("<p id=\"replication\">one region, or not read yet</p>");
    } else {
        out.push_str(
            "<table id=\"replication\"><tr><th>flow</th><th class=\"num\">lag (records)</th>\
             <th class=\"num\">lag (s)</th><th class=\"num\">newest heartbeat</th></tr>",
        );
        for f in &o.replication {
            let heartbeat = f
                .heartbeat_age_seconds
                .map_or_else(|| "none yet".to_owned(), |age| format!("{age:.1} s ago"));
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}</td><td class=\"num\">{}</td></tr>",
                escape(&f.flow),
                f.lag_records,
                f.lag_seconds,
                escape(&heartbeat)
            );
        }
        out.push_str("</table>");
    }
    out
}

const CHART_WIDTH: f64 = 600.0;
const CHART_HEIGHT: f64 = 120.0;

/// The orders placed in each minute of the hour before `now`, as stacked bars by state now: completed,
/// cancelled, still placed.
fn orders_chart(minutes: &[Minute], now: chrono::DateTime<chrono::Utc>) -> String {
    let most = minutes
        .iter()
        .map(|m| m.placed + m.completed + m.cancelled)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let bar = CHART_WIDTH / 60.0;
    let mut out = format!(
        "<svg id=\"orders-per-minute\" role=\"img\" width=\"{CHART_WIDTH}\" height=\"{}\" \
         viewBox=\"0 0 {CHART_WIDTH} {}\"><title>orders placed per minute over the last hour, by state: \
         completed (green), cancelled (red), open (grey); at most {most} in a minute</title>\
         <line x1=\"0\" y1=\"{CHART_HEIGHT}\" x2=\"{CHART_WIDTH}\" y2=\"{CHART_HEIGHT}\" stroke=\"#99a3ad\"/>",
        CHART_HEIGHT + 14.0,
        CHART_HEIGHT + 14.0,
    );
    for m in minutes {
        let minutes_ago = (now - m.minute).num_seconds() as f64 / 60.0;
        let x = CHART_WIDTH - minutes_ago.clamp(0.0, 60.0) * bar;
        let mut top = CHART_HEIGHT;
        for (count, color, state) in [
            (m.completed, "#2e8540", "completed"),
            (m.cancelled, "#b3261e", "cancelled"),
            (m.placed, "#99a3ad", "open"),
        ] {
            if count == 0 {
                continue;
            }
            let height = count as f64 / most * CHART_HEIGHT;
            top -= height;
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{height:.1}\" fill=\"{color}\">\
                 <title>{} {count} {state}</title></rect>",
                (bar - 1.0).max(1.0),
                m.minute.format("%H:%M"),
            );
        }
    }
    let _ = write!(
        out,
        "<text x=\"0\" y=\"{}\" font-size=\"11\">an hour ago</text><text x=\"{CHART_WIDTH}\" y=\"{}\" \
         font-size=\"11\" text-anchor=\"end\">now</text></svg>",
        CHART_HEIGHT + 12.0,
        CHART_HEIGHT + 12.0
    );
    out
}

/// The consumer groups' lag over time, as sampled since the console started.
fn lag_chart(samples: &[LagSample]) -> String {
    if samples.len() < 2 {
        return "<p id=\"lag-over-time\">lag over time: sampled every 10 s since the console started; not \
                enough samples yet</p>"
            .to_owned();
    }
    let most = samples
        .iter()
        .map(|s| s.consumer_lag)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let step = CHART_WIDTH / (samples.len() - 1) as f64;
    let points: Vec<String> = samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "{:.1},{:.1}",
                i as f64 * step,
                CHART_HEIGHT - s.consumer_lag as f64 / most * CHART_HEIGHT
            )
        })
        .collect();
    let first = samples
        .first()
        .map_or_else(String::new, |s| s.at.format("%H:%M:%S").to_string());
    format!(
        "<h2>Lag over time</h2><svg id=\"lag-over-time\" role=\"img\" width=\"{CHART_WIDTH}\" height=\"{h}\" \
         viewBox=\"0 0 {CHART_WIDTH} {h}\"><title>the consumer groups' lag, all together, every 10 s since \
         {first}; at most {most}</title><polyline fill=\"none\" stroke=\"#1d3b58\" stroke-width=\"2\" \
         points=\"{}\"/><text x=\"0\" y=\"{t}\" font-size=\"11\">{first}</text><text x=\"{CHART_WIDTH}\" \
         y=\"{t}\" font-size=\"11\" text-anchor=\"end\">now, lag {}</text></svg>",
        points.join(" "),
        samples.last().map_or(0, |s| s.consumer_lag),
        h = CHART_HEIGHT + 14.0,
        t = CHART_HEIGHT + 12.0,
    )
}

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

/// Encodes `text` for one path segment.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET /orders/{reference}`.
pub(crate) async fn order(
    State(console): State<Console>,
    Path(reference): Path<String>,
) -> Response {
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

/// `GET /dead-letters`: the dead-letter topics, with how many records each holds.
pub(crate) async fn dead_letter_topics(State(console): State<Console>) -> Response {
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
pub(crate) async fn dead_letters(
    State(console): State<Console>,
    Path(topic): Path<String>,
    Query(message): Query<Message>,
) -> Response {
    respond(&topic, dead_letters_page(&console, &topic, &message).await)
}

async fn dead_letters_page(
    console: &Console,
    topic: &str,
    message: &Message,
) -> Result<String, Problem> {
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

/// A message shown after an action.
#[derive(Deserialize)]
pub(crate) struct Message {
    message: Option<String>,
}

/// `GET /dead-letters/{topic}/{partition}/{offset}`: one dead letter, decoded, with its envelope.
pub(crate) async fn dead_letter(
    State(console): State<Console>,
    Path((topic, partition, offset)): Path<(String, String, String)>,
) -> Response {
    respond(
        &topic,
        dead_letter_page(&console, &topic, &partition, &offset).await,
    )
}

async fn dead_letter_page(
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

/// `GET /sagas/attention`: the escalated sagas, each that retrying can help with its retry button.
pub(crate) async fn attention(
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
pub(crate) async fn retry_saga(
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

/// `GET /outbox`: the backlog and the quarantine, each record with retry and discard.
pub(crate) async fn outbox(
    State(console): State<Console>,
    Query(message): Query<Message>,
) -> Response {
    respond("outbox", outbox_page(&console, &message).await)
}

async fn outbox_page(console: &Console, message: &Message) -> Result<String, Problem> {
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

/// A link to an order's page, or nothing without an order.
fn order_link(order_id: Option<uuid::Uuid>) -> String {
    order_id.map_or_else(String::new, |o| format!("<a href=\"/orders/{o}\">{o}</a>"))
}

/// A time to the millisecond (UTC), for the steps of one order.
fn precise(time: chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// A time, or `-`.
fn when(time: Option<chrono::DateTime<chrono::Utc>>) -> String {
    time.map_or_else(
        || "-".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

fn json_block(id: &str, value: Option<&serde_json::Value>) -> String {
    let text = value.map_or_else(
        || "-".to_owned(),
        |v| serde_json::to_string_pretty(v).unwrap_or_default(),
    );
    format!("<pre id=\"{id}\">{}</pre>", escape(&text))
}

/// `GET /replays`: the history, and the form that starts a dry run.
pub(crate) async fn replays(State(console): State<Console>) -> Response {
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
pub(crate) async fn replay(State(console): State<Console>, Path(id): Path<String>) -> Response {
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

/// `GET /reconciliations`.
pub(crate) async fn reconciliations(State(console): State<Console>) -> Response {
    respond(
        "reconciliation",
        async {
            let runs = crate::history::reconciliations(&console).await?;
            let mut out = String::from(
                "<h1>Reconciliation runs</h1><p>Started with <code>orderflow reconcile --from DAY</code> (a dry run \
                 unless <code>--apply</code>), or as a dry run below.</p>",
            );
            out.push_str(RECONCILE_FORM);
            out.push_str(
                "<h2>History</h2><table id=\"reconciliations\"><tr><th>started</th><th>by</th>\
                 <th>window</th><th>mode</th><th>outcome</th></tr>",
            );
            for run in &runs {
                let _ = write!(
                    out,
                    "<tr><td><a href=\"/reconciliations/{}\">{}</a></td><td>{}</td><td>{} to {}</td>\
                     <td>{}</td><td>{}</td></tr>",
                    run.id,
                    when(Some(run.started_at)),
                    escape(&run.run_by),
                    when(Some(run.window_from)),
                    when(Some(run.window_to)),
                    escape(&run.mode),
                    escape(run.outcome.as_deref().unwrap_or("running"))
                );
            }
            out.push_str("</table>");
            Ok(out)
        }
        .await,
    )
}

/// The form that starts a reconciliation's dry run.
const RECONCILE_FORM: &str = "<h2>Start a dry run</h2><form method=\"post\" action=\"/reconciliations/dry-run\" \
    id=\"reconcile-dry-run\"><p><input name=\"from\" placeholder=\"from: a UTC date or RFC 3339 (default: \
    yesterday)\"> <input name=\"to\" placeholder=\"to, excluded (default: a day later)\"></p>\
    <button type=\"submit\">Dry run</button> <span>finds the differences and repairs nothing; the answer \
    shows the command that applies it</span></form>";

/// `POST /reconciliations/dry-run` (the form on /reconciliations): what the run found, per class and one by
/// one, and the command that applies it.
pub(crate) async fn reconcile_dry_run(
    State(console): State<Console>,
    operator: Result<Operator, Problem>,
    body: String,
) -> Response {
    respond(
        "reconciliation dry run",
        async {
            let operator = operator?;
            let mut request = crate::reconcile::DryRunRequest::default();
            for (key, value) in crate::actions::form_pairs(&body) {
                match key.as_str() {
                    "from" => request.from = Some(value),
                    "to" => request.to = Some(value),
                    _ => {}
                }
            }
            let done = crate::reconcile::dry_run(&console, &operator, &request).await?;
            let report = &done.report;
            let mut out = format!(
                "<h1>Dry run <a href=\"/reconciliations/{id}\">{id}</a></h1><p id=\"reconcile-found\">{} to {}: \
                 {} differences; nothing repaired.</p><h2>To apply it</h2><pre id=\"apply\">{}</pre>\
                 <h2>By class</h2><table id=\"classes\"><tr><th>class</th><th class=\"num\">count</th>\
                 <th class=\"num\">amounts</th></tr>",
                when(Some(report.window.from)),
                when(Some(report.window.to)),
                report.summary.total(),
                escape(&done.apply),
                id = report.run_id,
            );
            for (class, summary) in &report.summary.classes {
                let amounts: Vec<String> = summary
                    .amounts
                    .iter()
                    .map(|(currency, minor)| format!("{} {currency}", money(*minor)))
                    .collect();
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                    escape(class),
                    summary.count,
                    escape(&amounts.join(", "))
                );
            }
            out.push_str("</table><h2>Differences</h2>");
            if report.differences.is_empty() {
                out.push_str("<p id=\"differences\" class=\"ok\">none: the books agree</p>");
                return Ok(out);
            }
            out.push_str(
                "<table id=\"differences\"><tr><th>class</th><th>order</th><th>provider ref</th>\
                 <th class=\"num\">amount</th><th>detail</th></tr>",
            );
            for d in &report.differences {
                let order = order_link(d.order_id);
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{order}</td><td>{}</td><td class=\"num\">{} {}</td><td>{}</td></tr>",
                    d.class.name(),
                    escape(d.provider_ref.as_deref().unwrap_or("")),
                    money(d.amount_minor),
                    escape(&d.currency),
                    escape(&d.detail)
                );
            }
            out.push_str("</table>");
            Ok(out)
        }
        .await,
    )
}

/// `GET /reconciliations/{id}`.
pub(crate) async fn reconciliation(
    State(console): State<Console>,
    Path(id): Path<String>,
) -> Response {
    respond(
        "reconciliation",
        async {
            let r = crate::history::reconciliation(&console, &id).await?;
            let mut out = format!(
                "<h1>Reconciliation {}</h1><p>{} of {} to {} by {}: {}</p><h2>Found</h2>{}\
                 <h2>Repaired</h2>{}<h2>Left for people</h2><table id=\"repairs\"><tr><th>class</th>\
                 <th>order</th><th class=\"num\">amount</th><th>action</th><th>why</th></tr>",
                r.run.id,
                escape(&r.run.mode),
                when(Some(r.run.window_from)),
                when(Some(r.run.window_to)),
                escape(&r.run.run_by),
                escape(r.run.outcome.as_deref().unwrap_or("running")),
                json_block("found", r.run.found.as_ref()),
                json_block("repaired", r.run.repaired.as_ref()),
            );
            for repair in &r.repairs {
                let order = order_link(repair.order_id);
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{order}</td><td class=\"num\">{} {}</td><td>{}</td><td>{}</td></tr>",
                    escape(&repair.class),
                    money(repair.amount_minor),
                    escape(&repair.currency),
                    escape(&repair.action),
                    escape(repair.reason.as_deref().unwrap_or(""))
                );
            }
            out.push_str("</table>");
            Ok(out)
        }
        .await,
    )
}

/// `GET /login`: the form that keeps the access token in a cookie for the pages' actions.
pub(crate) async fn login_form() -> Html<String> {
    page(
        "log in",
        "<h1>Log in</h1><p>The console's actions need its access token (CONSOLE_TOKEN), and so does reading \
         it when it is served on an address other than loopback.</p>\
         <form method=\"post\" action=\"/login\" id=\"login\"><input type=\"password\" name=\"token\" \
         aria-label=\"token\"> <button type=\"submit\">Log in</button></form>",
        None,
    )
}

/// `POST /login`: sets the token cookie when the token is right.
pub(crate) async fn login(
    State(console): State<Console>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let token = crate::actions::form_pairs(&body)
        .into_iter()
        .find(|(key, _)| key == "token")
        .map(|(_, value)| value)
        .unwrap_or_default();
    let mut with_token = headers.clone();
    if let Ok(value) = format!("Bearer {token}").parse() {
        with_token.insert(axum::http::header::AUTHORIZATION, value);
    }
    if let Err(problem) = crate::actions::authorize(&with_token, console.config.token.as_deref()) {
        return problem_page(&problem);
    }
    let cookie = format!(
        "{}={token}; HttpOnly; SameSite=Strict; Path=/",
        crate::actions::COOKIE
    );
    (
        [(axum::http::header::SET_COOKIE, cookie)],
        Redirect::to("/"),
    )
        .into_response()
}

/// Minor units as `12.34`.
fn money(minor: i64) -> String {
    format!(
        "{}{}.{:02}",
        if minor < 0 { "-" } else { "" },
        (minor / 100).abs(),
        (minor % 100).abs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_data_cannot_become_markup() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn a_reference_is_one_path_segment() {
        assert_eq!(percent_encode("key/1 ?x"), "key%2F1%20%3Fx");
        assert_eq!(percent_encode("demo-7_a.b~"), "demo-7_a.b~");
    }

    #[test]
    fn each_minute_is_a_bar_as_high_as_its_orders() {
        let now = chrono::Utc::now();
        let minute = |ago: i64, completed: i64, cancelled: i64| Minute {
            minute: now - chrono::Duration::minutes(ago),
            placed: 0,
            completed,
            cancelled,
        };
        let chart = orders_chart(&[minute(30, 4, 0), minute(1, 1, 1)], now);
        // The busiest minute is the full height; the other's two orders half of it, in two bars.
        assert!(
            chart.contains("height=\"120.0\" fill=\"#2e8540\""),
            "{chart}"
        );
        assert_eq!(chart.matches("height=\"30.0\"").count(), 2, "{chart}");
        assert_eq!(chart.matches("<rect").count(), 3, "{chart}");
    }

    #[test]
    fn amounts_show_their_minor_units() {
        assert_eq!(money(1999), "19.99");
        assert_eq!(money(5), "0.05");
        assert_eq!(money(-250), "-2.50");
    }
}
