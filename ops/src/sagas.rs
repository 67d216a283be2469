//! Retrying the step an escalated saga gave up on, from the CLI (`orderflow saga retry`) or the console;
//! each retry is a row of `operator_actions`, refused ones too.

use domain::OrderId;
use outbox::{Codec, Metadata};
use sagas::{Handled, OrderSaga, SagaInput, SagaStore, Step};
use serde_json::json;

use crate::OperatorError;
use crate::audit::{self, Action, Via};

/// How many times a retry that lost a race with another writer of the saga is tried again.
const CONFLICT_ATTEMPTS: u32 = 3;

/// Resumes the escalated saga of `order_id` ([`SagaInput::Resume`]): it goes back to the step it gave up
/// on, with a fresh retry budget, and sends that step's command again. Recorded as done by `actor` via
/// `via`. Returns the step retried.
///
/// # Errors
/// With nothing changed: [`OperatorError::NotFound`] when the order has no saga; [`OperatorError::BadInput`]
/// when its saga does not need attention, or when retrying cannot help (a parcel dispatched before its
/// cancellation). Database and outbox errors as [`OperatorError::Failed`].
pub async fn retry<C: Codec>(
    store: &SagaStore<C>,
    order_id: OrderId,
    via: Via,
    actor: &str,
) -> Result<Step, OperatorError> {
    let outcome = resume(store, order_id).await;
    let target = format!("saga/{order_id}");
    let step = outcome.as_ref().ok().map(|step| step.name());
    let action = Action {
        via,
        actor,
        action: "saga.retry",
        target: &target,
        detail: json!({ "order_id": order_id.to_string(), "step": step }),
    };
    audit::record(store.pool(), &action, &outcome).await?;
    outcome
}

async fn resume<C: Codec>(store: &SagaStore<C>, order_id: OrderId) -> Result<Step, OperatorError> {
    let failed = |e: sagas::SagaError| OperatorError::Failed(e.to_string());
    let mut conn = store.pool().acquire().await?;
    let loaded = store.load(&mut conn, order_id).await.map_err(failed)?;
    drop(conn);
    let step = match &loaded.state {
        OrderSaga::NotStarted => {
            return Err(OperatorError::NotFound(format!(
                "order {order_id} has no saga"
            )));
        }
        OrderSaga::NeedsAttention {
            step,
            resume: Some(_),
            ..
        } => *step,
        OrderSaga::NeedsAttention {
            step,
            last_error,
            resume: None,
            ..
        } => {
            return Err(OperatorError::BadInput(format!(
                "the saga of order {order_id} gave up on {step} because {last_error}; retrying it cannot \
                 help, a person has to decide"
            )));
        }
        running => {
            return Err(OperatorError::BadInput(format!(
                "the saga of order {order_id} does not need attention: it is {}",
                running.name()
            )));
        }
    };
    let metadata = Metadata::new(order_id.into());
    match store
        .execute(order_id, SagaInput::Resume, &metadata, CONFLICT_ATTEMPTS)
        .await
        .map_err(failed)?
    {
        Handled::Applied(_) => Ok(step),
        Handled::Ignored(_) => Err(OperatorError::BadInput(format!(
            "the saga of order {order_id} no longer needs attention: it was resumed meanwhile"
        ))),
    }
}
