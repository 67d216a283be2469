//! `--apply`: what a run does about the differences it found. Each repair commits with the row that keys it
//! by the difference (`reconcile_repairs`), so a second run, or a run after one killed halfway, repeats
//! nothing; and every call to the provider carries an idempotency key derived from the order it repairs, so a
//! run killed after the provider acted and before its row committed moves no money twice either (the next
//! run finds the provider's books settled).
//!
//! | class | repair |
//! |---|---|
//! | captured, not recorded | the capture's result is read from the provider and recorded through the payments service's recorder: the payment's events, the outbox and the kept operation, in the repair's transaction |
//! | money captured for a cancelled order | the money still held is refunded at the provider; its result comes to the payments service as any other |
//! | charged twice | what was captured past the first capture, less refunds, is refunded the same way |
//! | dangling authorization | the authorization is voided at the provider |
//! | notification given up | sent again from a fresh schedule (receivers apply an id once) |
//! | recorded, not at the provider; amount differs; completed without capture | `needs_attention`, with the reason: the books disagree on what happened, and a person asks the provider |

use domain::{Currency, Money, OrderId};
use indicatif::ProgressBar;
use outbox::Metadata;
use provider::Operation;
use serde::Serialize;
use services::ServiceError;
use services::payments::{Answer, ProviderClient, Recorder};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Class, Difference};

/// What repairs go through: the provider's API, and the payments service's recorder.
#[derive(Clone, Debug)]
pub struct Repairer {
    provider: ProviderClient,
    recorder: Recorder,
}

impl Repairer {
    /// Repairs calling `provider` and recording with `recorder`.
    #[must_use]
    pub const fn new(provider: ProviderClient, recorder: Recorder) -> Self {
        Self { provider, recorder }
    }
}

/// What one `--apply` did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Repairs {
    /// Captures the provider made that we now record.
    pub recorded_captures: usize,
    /// Refunds asked of the provider (money held for cancelled orders, or captured twice).
    pub refunds: usize,
    /// Dangling authorizations voided at the provider.
    pub voids: usize,
    /// Notifications given up and sent again.
    pub resent_notifications: usize,
    /// Differences left to a person, with the reason.
    pub needs_attention: usize,
    /// Differences an earlier run handled already.
    pub handled_before: usize,
    /// Repairs that failed this time (the provider did not answer, say); the next run tries them again.
    pub failed: usize,
}

impl Repairs {
    /// Differences repaired by this run.
    #[must_use]
    pub const fn repaired(&self) -> usize {
        self.recorded_captures + self.refunds + self.voids + self.resent_notifications
    }
}

/// What to do about one difference.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Plan {
    /// Record the capture with this reference, as the provider has it.
    RecordCapture {
        order_id: OrderId,
        reference: String,
    },
    /// Ask the provider to refund this much.
    Refund { order_id: OrderId, amount: Money },
    /// Ask the provider to void the authorization.
    Void { order_id: OrderId, amount: Money },
    /// Send the notification again.
    Resend(Uuid),
    /// Leave it to a person, for this reason.
    Attention(&'static str),
}

impl Plan {
    /// The action's name in `reconcile_repairs` and in metrics.
    const fn action(&self) -> &'static str {
        match self {
            Self::RecordCapture { .. } => "recorded_capture",
            Self::Refund { .. } => "refunded",
            Self::Void { .. } => "voided",
            Self::Resend(_) => "resent_notification",
            Self::Attention(_) => "needs_attention",
        }
    }
}

/// The repair of `difference`.
fn plan(difference: &Difference) -> Plan {
    let money = || {
        Currency::new(&difference.currency)
            .and_then(|currency| Money::new(difference.amount_minor, currency))
            .ok()
    };
    let order_id = difference
        .order_id
        .and_then(|id| OrderId::from_uuid(id).ok());
    match (difference.class, order_id, money()) {
        (Class::NotificationGivenUp, _, _) => match difference.notification_id {
            Some(id) => Plan::Resend(id),
            None => Plan::Attention("the notification is not named"),
        },
        (Class::CapturedNotRecorded, Some(order_id), _) => match &difference.provider_ref {
            Some(reference) => Plan::RecordCapture {
                order_id,
                reference: reference.clone(),
            },
            None => Plan::Attention("the capture's reference is not known"),
        },
        (Class::CapturedForCancelledOrder | Class::ChargedTwice, Some(order_id), Some(amount)) => {
            Plan::Refund { order_id, amount }
        }
        (Class::DanglingAuthorization, Some(order_id), Some(amount)) => {
            Plan::Void { order_id, amount }
        }
        (
            Class::RecordedNotAtProvider | Class::AmountMismatch | Class::CompletedWithoutCapture,
            ..,
        ) => Plan::Attention("the books disagree on what happened: ask the provider"),
        (Class::CapturedNotRecorded | Class::CapturedForCancelledOrder, ..)
        | (Class::ChargedTwice | Class::DanglingAuthorization, ..) => {
            Plan::Attention("the difference names no order or no valid amount")
        }
    }
}

/// Repairs `differences` found by run `run_id`, one step of `progress` each.
///
/// # Errors
/// A database error; what committed before it stays done, and the next run skips it. A repair the provider
/// did not answer is counted in [`Repairs::failed`] and left for the next run.
pub async fn apply(
    pool: &PgPool,
    repairer: &Repairer,
    run_id: Uuid,
    differences: &[Difference],
    progress: &ProgressBar,
) -> Result<Repairs, sqlx::Error> {
    let mut repairs = Repairs::default();
    for difference in differences {
        progress.inc(1);
        let plan = plan(difference);
        let mut tx = pool.begin().await?;
        if !claim(&mut tx, run_id, difference, &plan).await? {
            repairs.handled_before += 1;
            continue;
        }
        match carry_out(&mut tx, repairer, run_id, &plan).await {
            Ok(()) => {
                tx.commit().await?;
                metrics::counter!("reconcile_repairs_total", "action" => plan.action())
                    .increment(1);
                *match plan {
                    Plan::RecordCapture { .. } => &mut repairs.recorded_captures,
                    Plan::Refund { .. } => &mut repairs.refunds,
                    Plan::Void { .. } => &mut repairs.voids,
                    Plan::Resend(_) => &mut repairs.resent_notifications,
                    Plan::Attention(_) => &mut repairs.needs_attention,
                } += 1;
            }
            Err(Failure::Database(e)) => return Err(e),
            Err(Failure::Repair(e)) => {
                // The claim rolls back with the transaction: the next run tries again.
                tracing::warn!(key = %difference.key(), error = %e, "repair failed; the next run tries again");
                metrics::counter!("reconcile_repairs_failed_total").increment(1);
                repairs.failed += 1;
            }
        }
    }
    Ok(repairs)
}

/// Records that `plan` repairs `difference`; false when an earlier run did.
async fn claim(
    tx: &mut PgConnection,
    run_id: Uuid,
    difference: &Difference,
    plan: &Plan,
) -> Result<bool, sqlx::Error> {
    let reason = match plan {
        Plan::Attention(reason) => Some(*reason),
        _ => None,
    };
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
    .bind(plan.action())
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// Why a repair did not happen.
enum Failure {
    /// The database failed: the run stops.
    Database(sqlx::Error),
    /// This repair failed (the provider did not answer, the result cannot be recorded): the run goes on.
    Repair(ServiceError),
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(e)
    }
}

impl From<ServiceError> for Failure {
    fn from(e: ServiceError) -> Self {
        Self::Repair(e)
    }
}

async fn carry_out(
    tx: &mut PgConnection,
    repairer: &Repairer,
    run_id: Uuid,
    plan: &Plan,
) -> Result<(), Failure> {
    match plan {
        Plan::Resend(id) => {
            notify::resend_given_up(tx, *id).await?;
        }
        Plan::RecordCapture {
            order_id,
            reference,
        } => {
            let payment = repairer.provider.payment(*order_id).await?;
            let result = payment
                .as_ref()
                .and_then(|p| p.result(reference))
                .ok_or_else(|| {
                    ServiceError::NotApplicable(format!(
                        "the provider has no operation {reference} for order {order_id}"
                    ))
                })?;
            let metadata = Metadata::new(order_id.as_uuid()).caused_by(run_id);
            repairer.recorder.record(tx, result, &metadata).await?;
        }
        Plan::Refund { order_id, amount } => {
            let key = format!("reconcile-refund-{order_id}");
            ask(repairer, Operation::Refund, *order_id, *amount, &key).await?;
        }
        Plan::Void { order_id, amount } => {
            let key = format!("reconcile-void-{order_id}");
            ask(repairer, Operation::Void, *order_id, *amount, &key).await?;
        }
        Plan::Attention(_) => {}
    }
    Ok(())
}

/// Asks the provider for `operation`; its result comes to the payments service as any other.
async fn ask(
    repairer: &Repairer,
    operation: Operation,
    order_id: OrderId,
    amount: Money,
    key: &str,
) -> Result<(), ServiceError> {
    match repairer
        .provider
        .call(operation, order_id, amount, key)
        .await?
    {
        Answer::Pending { .. } => Ok(()),
        Answer::Decided(result) if result.outcome == provider::Outcome::Approved => Ok(()),
        Answer::Decided(result) => Err(ServiceError::NotApplicable(format!(
            "the provider declined the {operation} of order {order_id}: {}",
            result.reason.unwrap_or_default()
        ))),
    }
}
