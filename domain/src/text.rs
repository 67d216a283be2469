//! Free-text fields carried by commands and events (reasons, provider references).

use crate::error::ValidationError;

/// The longest free-text field (a reason, a provider reference), in characters.
pub const MAX_TEXT_LEN: usize = 500;

/// Refuses a blank `text` or one longer than [`MAX_TEXT_LEN`]; `field` names it in the error.
pub(crate) fn check_text(field: &'static str, text: &str) -> Result<(), ValidationError> {
    if text.trim().is_empty() {
        return Err(ValidationError::BlankText { field });
    }
    let len = text.chars().count();
    if len > MAX_TEXT_LEN {
        return Err(ValidationError::TextTooLong { field, len });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_text_up_to_the_limit() {
        assert_eq!(check_text("reason", "card expired"), Ok(()));
        assert_eq!(check_text("reason", &"é".repeat(MAX_TEXT_LEN)), Ok(()));
    }

    #[test]
    fn refuses_blank_and_overlong_text_naming_the_field() {
        assert_eq!(
            check_text("decline reason", " \t\n"),
            Err(ValidationError::BlankText {
                field: "decline reason"
            })
        );
        assert_eq!(
            check_text("reason", "").unwrap_err().to_string(),
            "reason must not be blank"
        );
        assert_eq!(
            check_text("reason", &"x".repeat(MAX_TEXT_LEN + 1)),
            Err(ValidationError::TextTooLong {
                field: "reason",
                len: MAX_TEXT_LEN + 1
            })
        );
    }
}
