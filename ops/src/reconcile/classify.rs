//! Finding the differences between the provider's books and ours: pure, over what [`super::load`] read.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// A money movement, on the provider's statement or in our `payment_operations`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct Line {
    pub provider_ref: String,
    pub order_id: Uuid,
    /// `authorize`, `capture`, `void` or `refund`.
    pub operation: String,
    pub amount_minor: i64,
    pub currency: String,
    pub at: DateTime<Utc>,
}

/// An order that ended in the window, and what it was to be paid.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct EndedOrder {
    pub order_id: Uuid,
    /// `completed` or `cancelled`.
    pub status: String,
    pub total_minor: i64,
    pub currency: String,
}

/// A notification given up in the window.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct GivenUp {
    pub id: Uuid,
    pub subscriber: String,
    pub kind: String,
}

/// A reference whose two halves differ: on one side only, or with another amount or currency.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pair {
    pub theirs: Option<Line>,
    pub ours: Option<Line>,
}

/// What the checks of one window need, as [`super::load`] reads it: the matching of references is done by
/// the database (a join), which hands over only the references that differ.
#[derive(Clone, Debug, Default)]
pub struct Books {
    /// References with a half in the window whose halves differ (the other half may lie outside it).
    pub unmatched: Vec<Pair>,
    /// Every capture and refund of the orders captured more than once, one of them in the window.
    pub repeated_captures: Vec<Line>,
    pub ended_orders: Vec<EndedOrder>,
    /// Every statement line of the ended orders, whatever its time.
    pub ended_orders_lines: Vec<Line>,
    pub given_up: Vec<GivenUp>,
}

/// The kinds of difference, in the order they are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// The provider captured money we have no record of.
    CapturedNotRecorded,
    /// We recorded a movement the provider's statement does not have.
    RecordedNotAtProvider,
    /// Both have the reference, with another amount or currency.
    AmountMismatch,
    /// The provider captured an order's money more than once.
    ChargedTwice,
    /// A cancelled order's money is still captured (captures minus refunds above zero).
    CapturedForCancelledOrder,
    /// A completed order has less captured than its total.
    CompletedWithoutCapture,
    /// A cancelled order's authorization was neither captured nor voided.
    DanglingAuthorization,
    /// A notification reached no one: the schedule ran out.
    NotificationGivenUp,
}

impl Class {
    pub const ALL: [Self; 8] = [
        Self::CapturedNotRecorded,
        Self::RecordedNotAtProvider,
        Self::AmountMismatch,
        Self::ChargedTwice,
        Self::CapturedForCancelledOrder,
        Self::CompletedWithoutCapture,
        Self::DanglingAuthorization,
        Self::NotificationGivenUp,
    ];

    /// The class's name in reports, JSON and CSV.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::CapturedNotRecorded => "captured_not_recorded",
            Self::RecordedNotAtProvider => "recorded_not_at_provider",
            Self::AmountMismatch => "amount_mismatch",
            Self::ChargedTwice => "charged_twice",
            Self::CapturedForCancelledOrder => "captured_for_cancelled_order",
            Self::CompletedWithoutCapture => "completed_without_capture",
            Self::DanglingAuthorization => "dangling_authorization",
            Self::NotificationGivenUp => "notification_given_up",
        }
    }
}

/// One difference between the books.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub class: Class,
    pub order_id: Option<Uuid>,
    pub provider_ref: Option<String>,
    /// The money at stake, in minor units of `currency` (0 when none is).
    pub amount_minor: i64,
    pub currency: String,
    /// The notification, for [`Class::NotificationGivenUp`].
    pub notification_id: Option<Uuid>,
    pub detail: String,
}

impl Difference {
    /// What names this difference from one run to the next: its class and what it is about. A repair is
    /// keyed by it, so that it is done once however often `--apply` runs.
    #[must_use]
    pub fn key(&self) -> String {
        let text = |value: Option<String>| value.unwrap_or_else(|| "-".into());
        format!(
            "{}:{}:{}:{}",
            self.class.name(),
            text(self.order_id.map(|o| o.to_string())),
            text(self.provider_ref.clone()),
            text(self.notification_id.map(|n| n.to_string()))
        )
    }
}

/// Every difference between `books`, by class, then order, then reference.
#[must_use]
pub fn classify(books: &Books) -> Vec<Difference> {
    let mut found = Vec::new();
    references(books, &mut found);
    double_captures(books, &mut found);
    ended_orders(books, &mut found);
    for given_up in &books.given_up {
        found.push(Difference {
            class: Class::NotificationGivenUp,
            order_id: None,
            provider_ref: None,
            amount_minor: 0,
            currency: String::new(),
            notification_id: Some(given_up.id),
            detail: format!(
                "notification {} ({}) to {} given up",
                given_up.id, given_up.kind, given_up.subscriber
            ),
        });
    }
    found.sort_by(|a, b| {
        (a.class, a.order_id, &a.provider_ref).cmp(&(b.class, b.order_id, &b.provider_ref))
    });
    found
}

/// Each reference whose halves differ.
fn references(books: &Books, found: &mut Vec<Difference>) {
    for pair in &books.unmatched {
        match (&pair.theirs, &pair.ours) {
            (Some(theirs), None) if theirs.operation == "capture" => found.push(difference(
                Class::CapturedNotRecorded,
                theirs,
                "no payment operation has this reference".into(),
            )),
            (None, Some(ours)) => {
                let detail = format!("{} recorded, absent from the statement", ours.operation);
                found.push(difference(Class::RecordedNotAtProvider, ours, detail));
            }
            (Some(theirs), Some(ours))
                if (ours.amount_minor, &ours.currency)
                    != (theirs.amount_minor, &theirs.currency) =>
            {
                let detail = format!(
                    "{} {} at the provider, {} {} recorded",
                    theirs.amount_minor, theirs.currency, ours.amount_minor, ours.currency
                );
                found.push(difference(Class::AmountMismatch, theirs, detail));
            }
            // An authorization, void or refund only the provider has is an order's matter: the checks of
            // ended orders weigh it.
            _ => {}
        }
    }
}

/// Orders captured more than once: the money of every capture after the first, less what was refunded.
fn double_captures(books: &Books, found: &mut Vec<Difference>) {
    let mut lines: BTreeMap<Uuid, Vec<&Line>> = BTreeMap::new();
    for line in &books.repeated_captures {
        lines.entry(line.order_id).or_default().push(line);
    }
    for (order_id, lines) in lines {
        let mut captures: Vec<&Line> = lines
            .iter()
            .copied()
            .filter(|l| l.operation == "capture")
            .collect();
        captures.sort_by_key(|l| (l.at, &l.provider_ref));
        let refunded: i64 = lines
            .iter()
            .filter(|l| l.operation == "refund")
            .map(|l| l.amount_minor)
            .sum();
        let [first, extra @ ..] = captures.as_slice() else {
            continue;
        };
        let over = extra.iter().map(|l| l.amount_minor).sum::<i64>() - refunded;
        if !extra.is_empty() && over > 0 {
            found.push(Difference {
                class: Class::ChargedTwice,
                order_id: Some(order_id),
                provider_ref: Some(first.provider_ref.clone()),
                amount_minor: over,
                currency: first.currency.clone(),
                notification_id: None,
                detail: format!("{} captures, {refunded} refunded", captures.len()),
            });
        }
    }
}

/// Orders that ended in the window, against what the provider holds of their money.
fn ended_orders(books: &Books, found: &mut Vec<Difference>) {
    let mut lines: HashMap<Uuid, Vec<&Line>> = HashMap::new();
    for line in &books.ended_orders_lines {
        lines.entry(line.order_id).or_default().push(line);
    }
    for order in &books.ended_orders {
        let of_order = lines.get(&order.order_id).map_or(&[][..], Vec::as_slice);
        let sum = |operation: &str| -> i64 {
            of_order
                .iter()
                .filter(|l| l.operation == operation)
                .map(|l| l.amount_minor)
                .sum()
        };
        let has = |operation: &str| of_order.iter().any(|l| l.operation == operation);
        let held = sum("capture") - sum("refund");
        let at_stake = |class, amount_minor, detail| Difference {
            class,
            order_id: Some(order.order_id),
            provider_ref: None,
            amount_minor,
            currency: order.currency.clone(),
            notification_id: None,
            detail,
        };
        match order.status.as_str() {
            "cancelled" if held > 0 => found.push(at_stake(
                Class::CapturedForCancelledOrder,
                held,
                "cancelled, money still captured".into(),
            )),
            // A void releases the authorization whatever amount it names (a void by the order's key, of an
            // authorization we never recorded, names none).
            "cancelled" if held == 0 && sum("authorize") > 0 && !has("void") && !has("capture") => {
                found.push(at_stake(
                    Class::DanglingAuthorization,
                    sum("authorize"),
                    "cancelled, authorization neither captured nor voided".into(),
                ));
            }
            "completed" if held < order.total_minor => found.push(at_stake(
                Class::CompletedWithoutCapture,
                order.total_minor - held,
                format!("completed, {held} of {} captured", order.total_minor),
            )),
            _ => {}
        }
    }
}

fn difference(class: Class, line: &Line, detail: String) -> Difference {
    Difference {
        class,
        order_id: Some(line.order_id),
        provider_ref: Some(line.provider_ref.clone()),
        amount_minor: line.amount_minor,
        currency: line.currency.clone(),
        notification_id: None,
        detail,
    }
}

/// Counts and amounts per class (amounts per currency), every class listed, clean ones with 0.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub classes: BTreeMap<&'static str, ClassSummary>,
}

/// One class's count, and its amounts by currency.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClassSummary {
    pub count: usize,
    pub amounts: BTreeMap<String, i64>,
}

impl Summary {
    #[must_use]
    pub fn of(differences: &[Difference]) -> Self {
        let mut classes: BTreeMap<&'static str, ClassSummary> = Class::ALL
            .iter()
            .map(|c| (c.name(), ClassSummary::default()))
            .collect();
        for d in differences {
            let class = classes.entry(d.class.name()).or_default();
            class.count += 1;
            if !d.currency.is_empty() {
                *class.amounts.entry(d.currency.clone()).or_default() += d.amount_minor;
            }
        }
        Self { classes }
    }

    /// Differences in all.
    #[must_use]
    pub fn total(&self) -> usize {
        self.classes.values().map(|c| c.count).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn line(n: u128, operation: &str, reference: &str, amount_minor: i64) -> Line {
        Line {
            provider_ref: reference.into(),
            order_id: order(n),
            operation: operation.into(),
            amount_minor,
            currency: "EUR".into(),
            at: DateTime::UNIX_EPOCH,
        }
    }

    fn ended(n: u128, status: &str, total_minor: i64) -> EndedOrder {
        EndedOrder {
            order_id: order(n),
            status: status.into(),
            total_minor,
            currency: "EUR".into(),
        }
    }

    /// Books of orders that ended as given, with `lines` at the provider and both sides agreeing.
    fn agreeing(lines: &[Line], orders: &[EndedOrder]) -> Books {
        Books {
            ended_orders: orders.to_vec(),
            ended_orders_lines: lines.to_vec(),
            ..Books::default()
        }
    }

    fn pair(theirs: Option<&Line>, ours: Option<&Line>) -> Pair {
        Pair {
            theirs: theirs.cloned(),
            ours: ours.cloned(),
        }
    }

    fn found(books: &Books) -> Vec<(Class, i64)> {
        classify(books)
            .iter()
            .map(|d| (d.class, d.amount_minor))
            .collect()
    }

    /// A completed order (authorized, captured) and a cancelled one (authorized, voided).
    fn healthy() -> (Vec<Line>, Vec<EndedOrder>) {
        let lines = vec![
            line(1, "authorize", "a1", 500),
            line(1, "capture", "c1", 500),
            line(2, "authorize", "a2", 300),
            line(2, "void", "v2", 300),
        ];
        (
            lines,
            vec![ended(1, "completed", 500), ended(2, "cancelled", 300)],
        )
    }

    #[test]
    fn agreeing_books_have_no_difference() {
        let (lines, orders) = healthy();
        assert_eq!(found(&agreeing(&lines, &orders)), []);
    }

    /// The saga's void of an authorization whose result never reached us goes by the order's key and names
    /// no amount; the authorization is released all the same.
    #[test]
    fn a_void_of_no_amount_releases_the_authorization() {
        let lines = [line(3, "authorize", "a3", 700), line(3, "void", "v3", 0)];
        let books = agreeing(&lines, &[ended(3, "cancelled", 700)]);
        assert_eq!(found(&books), []);
    }

    /// A second capture refunded is no longer money taken twice; one not refunded in full still is, for
    /// what is left.
    #[test]
    fn refunds_settle_a_double_capture() {
        let captures = [
            line(4, "capture", "c4", 250),
            line(4, "capture", "c4b", 250),
        ];
        let mut books = Books {
            repeated_captures: captures.to_vec(),
            ..Books::default()
        };
        assert_eq!(found(&books), [(Class::ChargedTwice, 250)]);
        books.repeated_captures.push(line(4, "refund", "r4", 100));
        assert_eq!(found(&books), [(Class::ChargedTwice, 150)]);
        books.repeated_captures.push(line(4, "refund", "r4b", 150));
        assert_eq!(found(&books), []);
    }

    #[test]
    fn a_capture_we_did_not_record_is_found_with_its_amount() {
        let (lines, orders) = healthy();
        let mut books = agreeing(&lines, &orders);
        books.unmatched.push(pair(Some(&lines[1]), None));
        assert_eq!(found(&books), [(Class::CapturedNotRecorded, 500)]);
    }

    #[test]
    fn other_movements_only_the_provider_has_are_left_to_the_order_checks() {
        let (lines, orders) = healthy();
        let mut books = agreeing(&lines, &orders);
        books.unmatched.push(pair(Some(&lines[3]), None));
        assert_eq!(found(&books), []);
    }

    #[test]
    fn a_movement_absent_from_the_statement_is_found() {
        let (mut lines, orders) = healthy();
        let void = lines.remove(3);
        let mut books = agreeing(&lines, &orders);
        books.unmatched.push(pair(None, Some(&void)));
        // Without its void, the cancelled order's authorization dangles too: both are found.
        assert_eq!(
            found(&books),
            [
                (Class::RecordedNotAtProvider, 300),
                (Class::DanglingAuthorization, 300)
            ]
        );
    }

    #[test]
    fn another_amount_or_currency_is_a_mismatch_and_equal_halves_are_not() {
        let (lines, orders) = healthy();
        let mut books = agreeing(&lines, &orders);
        let mut short = lines[1].clone();
        short.amount_minor = 499;
        let mut dollars = lines[2].clone();
        dollars.currency = "USD".into();
        books.unmatched = vec![
            pair(Some(&lines[1]), Some(&short)),
            pair(Some(&lines[2]), Some(&dollars)),
            pair(Some(&lines[0]), Some(&lines[0])),
        ];
        let differences = classify(&books);
        let classes: Vec<_> = differences.iter().map(|d| (d.class, d.order_id)).collect();
        assert_eq!(
            classes,
            [
                (Class::AmountMismatch, Some(order(1))),
                (Class::AmountMismatch, Some(order(2)))
            ]
        );
        assert_eq!(
            differences[0].detail,
            "500 EUR at the provider, 499 EUR recorded"
        );
    }

    #[test]
    fn every_capture_after_the_first_is_charged_twice() {
        let (lines, orders) = healthy();
        let mut books = agreeing(&lines, &orders);
        let mut again = line(1, "capture", "c1-again", 500);
        again.at = lines[1].at + chrono::Duration::seconds(1);
        books.repeated_captures = vec![again, lines[1].clone()];
        let differences = classify(&books);
        assert_eq!(found(&books), [(Class::ChargedTwice, 500)]);
        assert_eq!(
            differences[0].provider_ref.as_deref(),
            Some("c1"),
            "the first capture"
        );
    }

    #[test]
    fn money_held_for_a_cancelled_order_is_found_until_refunded() {
        let (mut lines, orders) = healthy();
        lines.push(line(2, "capture", "c2", 300));
        assert_eq!(
            found(&agreeing(&lines, &orders)),
            [(Class::CapturedForCancelledOrder, 300)]
        );
        lines.push(line(2, "refund", "r2", 300));
        assert_eq!(found(&agreeing(&lines, &orders)), []);
    }

    #[test]
    fn a_completed_order_short_of_its_total_is_found() {
        let (mut lines, orders) = healthy();
        lines.retain(|l| l.provider_ref != "c1");
        assert_eq!(
            found(&agreeing(&lines, &orders)),
            [(Class::CompletedWithoutCapture, 500)]
        );
    }

    #[test]
    fn given_up_notifications_are_listed_and_every_class_is_summarized() {
        let (lines, orders) = healthy();
        let mut books = agreeing(&lines, &orders);
        books.given_up.push(GivenUp {
            id: order(9),
            subscriber: "payments".into(),
            kind: "payment.result".into(),
        });
        books.unmatched.push(pair(Some(&lines[1]), None));
        let summary = Summary::of(&classify(&books));
        assert_eq!(summary.total(), 2);
        assert_eq!(summary.classes.len(), Class::ALL.len());
        assert_eq!(summary.classes["notification_given_up"].count, 1);
        let captured = &summary.classes["captured_not_recorded"];
        assert_eq!((captured.count, captured.amounts["EUR"]), (1, 500));
        assert_eq!(summary.classes["charged_twice"], ClassSummary::default());
    }
}
