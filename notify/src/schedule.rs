//! When a notification is tried again.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::Rng as _;

/// The waits between attempts: the first attempt is at once, then one attempt after each wait; after the
/// last one fails the notification is given up. Each wait is spread by up to `jitter` either way, so that
/// notifications that failed together (a receiver down) do not all come back at the same second.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    waits: Vec<Duration>,
    jitter: f64,
}

impl Schedule {
    /// A schedule of `waits` with a jitter of a fifth.
    ///
    /// # Panics
    /// If `waits` is empty: a notification is tried at least twice.
    #[must_use]
    pub fn new(waits: Vec<Duration>) -> Self {
        assert!(!waits.is_empty(), "a schedule has at least one wait");
        Self { waits, jitter: 0.2 }
    }

    /// The same waits spread by up to `jitter` (0 to 1) of themselves either way.
    #[must_use]
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter.clamp(0.0, 1.0);
        self
    }

    /// Attempts in all, the first included.
    #[must_use]
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.waits.len() + 1).unwrap_or(u32::MAX)
    }

    /// The wait after the `attempt`-th attempt (from 1) failed; `None` once it was the last one.
    #[must_use]
    pub fn after(&self, attempt: u32) -> Option<Duration> {
        let base = *self
            .waits
            .get(usize::try_from(attempt).ok()?.checked_sub(1)?)?;
        if self.jitter == 0.0 {
            return Some(base);
        }
        let spread = rand::rng().random_range(-self.jitter..=self.jitter);
        Some(base.mul_f64(1.0 + spread))
    }
}

impl Default for Schedule {
    /// 15 s, 1 min, 5 min, 30 min, 2 h, 6 h: seven attempts over about nine hours.
    fn default() -> Self {
        Self::new(
            [15, 60, 300, 1800, 7200, 21_600]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
        )
    }
}

/// A schedule is written as its waits, separated by commas: `15s,1m,5m,30m,2h,6h` (units ms, s, m, h).
impl FromStr for Schedule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let waits = text
            .split(',')
            .map(|wait| parse_wait(wait.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        if waits.is_empty() {
            return Err("a schedule has at least one wait".into());
        }
        Ok(Self::new(waits))
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let waits: Vec<String> = self
            .waits
            .iter()
            .map(|w| format!("{}ms", w.as_millis()))
            .collect();
        f.write_str(&waits.join(","))
    }
}

fn parse_wait(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a wait such as 15s, 1m, 2h or 500ms"))?;
    let unit = match unit {
        "ms" => Duration::from_millis(1),
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        _ => return Err(format!("`{text}` has no unit of ms, s, m or h")),
    };
    Ok(unit * u32::try_from(number).map_err(|_| format!("`{text}` is too long a wait"))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_tries_seven_times_then_gives_up() {
        let schedule = Schedule::default().with_jitter(0.0);
        assert_eq!(schedule.attempts(), 7);
        assert_eq!(schedule.after(1), Some(Duration::from_secs(15)));
        assert_eq!(schedule.after(6), Some(Duration::from_secs(6 * 3600)));
        assert_eq!(schedule.after(7), None);
        assert_eq!(schedule.after(0), None);
    }

    #[test]
    fn jitter_stays_within_its_bound() {
        let schedule = Schedule::default();
        for _ in 0..1000 {
            let wait = schedule.after(2).unwrap().as_secs_f64();
            assert!((48.0..=72.0).contains(&wait), "{wait}");
        }
    }

    #[test]
    fn schedules_parse_from_text_and_bad_ones_are_named() {
        let schedule: Schedule = "15s, 1m,2h,500ms".parse().unwrap();
        assert_eq!(schedule.to_string(), "15000ms,60000ms,7200000ms,500ms");
        assert_eq!(schedule.to_string().parse::<Schedule>().unwrap(), schedule);
        for bad in ["", "15", "1d", "s", "1m,,2m"] {
            let error = bad.parse::<Schedule>().unwrap_err();
            assert!(!error.is_empty(), "{bad}");
        }
    }
}
