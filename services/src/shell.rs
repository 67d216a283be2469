//! The one shape every service has: a pure decision behind one async shell.
//!
//! A service is a [`Responder`]: it loads (and locks) what a request applies to, decides from that alone
//! what the request comes to ([`Decision`], pure and table-tested in the service's `respond` module), and
//! carries out what it decided (calls the provider or books the carrier, records). [`Shell`] is the
//! consumer runtime's [`Handler`] for any of them: it decodes the request, and replies on the service's
//! events topic when the decision is a repeat, in the transaction that records the inbox row.

use std::future::Future;

use consumers::{Handler, HandlerError, Incoming};
use domain::{AboutOrder, Message, OrderId, Service};
use outbox::Metadata;
use serde::de::DeserializeOwned;
use sqlx::PgConnection;
use tracing::Instrument as _;

use crate::{Context, ServiceError, caused_by};

/// What a request comes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<Act, Reply> {
    /// Carry out `Act` ([`Responder::carry_out`]): it changes the state and writes the reply.
    Act(Act),
    /// Answer with this reply and change nothing: a repeat, or an undo of what never happened.
    Repeat(Reply),
    /// The request cannot apply to the state; the reason says why. Dead-lettered, not answered.
    NotApplicable(String),
}

/// One service's request handling, run by [`Shell`].
pub trait Responder: Send + Sync + 'static {
    /// The service whose commands it reads and on whose events topic it replies.
    const SERVICE: Service;
    /// Whether its requests may be answered several in one transaction ([`Handler::BATCHES`]).
    const BATCHES: bool = true;
    /// The requests on its commands topic.
    type Request: DeserializeOwned + Message + AboutOrder + Send;
    /// What a decision is taken on, loaded and locked for the transaction.
    type State: Send;
    /// What a decision asks to carry out.
    type Act: Send;
    /// Its replies.
    type Reply: Message + AboutOrder + Send + Sync;

    /// The event store, codec and topics it writes with.
    fn context(&self) -> &Context;

    /// Loads and locks what a request about `order_id` applies to.
    fn load(
        &self,
        tx: &mut PgConnection,
        order_id: OrderId,
    ) -> impl Future<Output = Result<Self::State, ServiceError>> + Send;

    /// What `request` comes to in `state`: no I/O.
    ///
    /// # Errors
    /// When the request is invalid.
    fn decide(
        &self,
        state: &Self::State,
        request: Self::Request,
    ) -> Result<Decision<Self::Act, Self::Reply>, ServiceError>;

    /// Carries out `act` on `state` and writes the reply, with `metadata`.
    fn carry_out(
        &self,
        tx: &mut PgConnection,
        order_id: OrderId,
        state: Self::State,
        act: Self::Act,
        metadata: &Metadata,
    ) -> impl Future<Output = Result<(), ServiceError>> + Send;
}

/// The consumer runtime's handler for a [`Responder`].
#[derive(Clone, Debug)]
pub struct Shell<R>(R);

impl<R: Responder> From<R> for Shell<R> {
    fn from(responder: R) -> Self {
        Self(responder)
    }
}

impl<R: Responder> Shell<R> {
    /// The responder inside.
    pub fn responder(&self) -> &R {
        &self.0
    }

    /// Answers `request` (read from `record`) on `tx`: load, decide, then carry out or reply.
    ///
    /// # Errors
    /// [`ServiceError::NotApplicable`] when the decision says so; what loading or carrying out failed with.
    pub async fn apply(
        &self,
        tx: &mut PgConnection,
        request: R::Request,
        record: &Incoming,
    ) -> Result<(), ServiceError> {
        let order_id = request.order_id();
        // No `err` field: the consumer runtime logs a failure at the level its class calls for.
        let span = tracing::info_span!(
            "request",
            service = %R::SERVICE,
            %order_id,
            request = request.event_type()
        );
        let responder = &self.0;
        async move {
            let metadata = caused_by(order_id, record);
            let state = responder.load(tx, order_id).await?;
            match responder.decide(&state, request)? {
                Decision::Act(act) => {
                    responder
                        .carry_out(tx, order_id, state, act, &metadata)
                        .await
                }
                Decision::Repeat(reply) => {
                    responder
                        .context()
                        .reply(tx, R::SERVICE, reply, &metadata)
                        .await
                }
                Decision::NotApplicable(reason) => Err(ServiceError::NotApplicable(reason)),
            }
        }
        .instrument(span)
        .await
    }
}

impl<R: Responder> Handler for Shell<R> {
    const BATCHES: bool = R::BATCHES;

    async fn handle(&self, tx: &mut PgConnection, record: &Incoming) -> Result<(), HandlerError> {
        let request: R::Request = self.0.context().decode(record).await?;
        self.apply(tx, request, record).await.map_err(Into::into)
    }
}
