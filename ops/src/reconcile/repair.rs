//! `--apply`: what a run does about the differences it found. Each repair commits with the row that keys
//! it by the difference, so a second run, or a run after one killed halfway, repeats nothing.
//!
//! Built: a notification given up is sent again from a fresh schedule (receivers apply an id once). The
//! money repairs (record a missing capture, refund a cancelled order's capture, void a dangling
//! authorization) must go through the provider and the payments service's command path, which is not built
//! yet: those differences are marked `needs_attention` with the reason, for a person.

use indicatif::ProgressBar;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::{Class, Difference};

/// What one `--apply` did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Repairs {
    /// Notifications given up and sent again.
    pub resent_notifications: usize,
    /// Differences left to a person, with the reason.
    pub needs_attention: usize,
    /// Differences an earlier run handled already.
    pub handled_before: usize,
}

/// Repairs `differences` found by run `run_id`, one step of `progress` each.
///
/// # Errors
/// A database error; what committed before it stays done, and the next run skips it.
pub async fn apply(
    pool: &PgPool,
    run_id: Uuid,
    differences: &[Difference],
    progress: &ProgressBar,
) -> Result<Repairs, sqlx::Error> {
    let mut repairs = Repairs::default();
    for difference in differences {
        progress.inc(1);
        let mut tx = pool.begin().await?;
        let (action, reason) = plan(difference);
        let claimed = sqlx::query(
            "INSERT INTO reconcile_repairs (difference_key, run_id, class, order_id, provider_ref,
                                            amount_minor, currency, action, reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (difference_key) DO NOTHING",
        )
        .bind(difference.key())
        .bind(run_id)
        .bind(difference.class.name())
        .bind(difference.order_id)
        .bind(&difference.provider_ref)
        .bind(difference.amount_minor)
        .bind(&difference.currency)
        .bind(action)
        .bind(reason)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            repairs.handled_before += 1;
            continue;
        }
        metrics::counter!("reconcile_repairs_total", "action" => action).increment(1);
        match (action, difference.notification_id) {
            ("resent_notification", Some(id)) => {
                notify::resend_given_up(&mut tx, id).await?;
                repairs.resent_notifications += 1;
            }
            _ => repairs.needs_attention += 1,
        }
        tx.commit().await?;
    }
    Ok(repairs)
}

/// The repair of `difference`, or why a person must make it.
fn plan(difference: &Difference) -> (&'static str, Option<&'static str>) {
    let attention = |reason| ("needs_attention", Some(reason));
    match difference.class {
        Class::NotificationGivenUp if difference.notification_id.is_some() => {
            ("resent_notification", None)
        }
        Class::NotificationGivenUp => attention("the notification is not named"),
        Class::CapturedNotRecorded => attention(
            "record the capture through the payments service: the repair command path is not built",
        ),
        Class::CapturedForCancelledOrder | Class::ChargedTwice => attention(
            "refund through the provider and the payments service: the repair command path is not built",
        ),
        Class::DanglingAuthorization => attention(
            "void through the provider and the payments service: the repair command path is not built",
        ),
        Class::RecordedNotAtProvider | Class::AmountMismatch | Class::CompletedWithoutCapture => {
            attention("the books disagree on what happened: ask the provider")
        }
    }
}
