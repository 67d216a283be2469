//! Reconciliation runs: the history, one run's findings and repairs, and starting a dry run.

use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::response::Response;

use super::{escape, json_block, money, order_link, respond, when};
use crate::actions::Operator;
use crate::{Console, Problem};

/// `GET /reconciliations`.
pub(crate) async fn list(State(console): State<Console>) -> Response {
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
pub(crate) async fn dry_run(
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
pub(crate) async fn one(State(console): State<Console>, Path(id): Path<String>) -> Response {
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
