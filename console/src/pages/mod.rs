//! The pages: server-rendered HTML, no script, no external font or stylesheet, a module per page (its
//! `GET` handlers and the `POST`s of its forms). What they share is here: the frame, escaping, the problem
//! page, and how times, amounts and links are shown.

pub(crate) mod attention;
pub(crate) mod dead_letters;
pub(crate) mod login;
pub(crate) mod orders;
pub(crate) mod outbox;
pub(crate) mod overview;
pub(crate) mod reconciliations;
pub(crate) mod replays;

use axum::response::{Html, IntoResponse as _, Response};
use serde::Deserialize;

use crate::Problem;

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

/// A page saying what went wrong, with the problem's status; a link to log in when the token was missing.
pub(crate) fn problem_page(problem: &Problem) -> Response {
    let login = if problem.status == axum::http::StatusCode::UNAUTHORIZED {
        "<p><a id=\"login-link\" href=\"/login\">Log in with the console's access token</a>, then try \
         again.</p>"
    } else {
        ""
    };
    let body = format!(
        "<h1>{}</h1><p class=\"bad\" id=\"problem\">{}</p>{login}",
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

/// One figure of a row of tiles, in red when `bad`.
fn tile(id: &str, label: &str, value: &str, bad: bool) -> String {
    format!(
        "<div class=\"tile\" id=\"{id}\"><b class=\"{}\">{}</b>{}</div>",
        if bad { "bad" } else { "" },
        escape(value),
        escape(label)
    )
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

/// A message shown after an action.
#[derive(Deserialize)]
pub(crate) struct Message {
    message: Option<String>,
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

/// `value` pretty-printed in a `<pre>` named `id`, or `-` without one.
fn json_block(id: &str, value: Option<&serde_json::Value>) -> String {
    let text = value.map_or_else(
        || "-".to_owned(),
        |v| serde_json::to_string_pretty(v).unwrap_or_default(),
    );
    format!("<pre id=\"{id}\">{}</pre>", escape(&text))
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
    fn amounts_show_their_minor_units() {
        assert_eq!(money(1999), "19.99");
        assert_eq!(money(5), "0.05");
        assert_eq!(money(-250), "-2.50");
    }
}
