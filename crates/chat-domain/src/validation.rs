//! Field-level validation failures, collected so a client learns about every bad field at once.

use std::fmt;

/// One field that failed to parse into its domain type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Collects field errors while a request is parsed field by field.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the value when it parsed, records the error otherwise.
    pub fn check<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.errors.push(error);
                None
            }
        }
    }

    /// Fails with every recorded error, or succeeds when there were none.
    pub fn finish(self) -> Result<(), crate::DomainError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(crate::DomainError::Validation(self.errors))
        }
    }
}
