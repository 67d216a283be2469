//! The overview (`GET /`): what the pipeline is doing now, with charts; it reloads itself every 10 s.

use std::fmt::Write as _;

use axum::extract::State;
use axum::response::{IntoResponse as _, Response};

use super::{escape, page, percent_encode, problem_page, tile};
use crate::Console;
use crate::overview::{LagSample, Minute, Overview};

/// `GET /`.
pub(crate) async fn get(State(console): State<Console>) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
