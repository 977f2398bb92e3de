//! Offset pagination with a bounded page size.

use crate::validation::FieldError;

/// A page of a list: `limit` is 1..=[`Page::MAX_LIMIT`], default [`Page::DEFAULT_LIMIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub offset: u32,
}

impl Page {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 200;

    pub fn parse(limit: Option<i64>, offset: Option<i64>) -> Result<Self, FieldError> {
        Ok(Self {
            limit: parse_limit(limit)?,
            offset: match offset {
                None => 0,
                Some(o) => u32::try_from(o)
                    .map_err(|_| FieldError::new("offset", "must be a non-negative integer"))?,
            },
        })
    }
}

impl Default for Page {
    fn default() -> Self {
        Self {
            limit: Self::DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

/// Parses a page size: absent means the default, otherwise 1..=MAX_LIMIT.
pub fn parse_limit(limit: Option<i64>) -> Result<u32, FieldError> {
    match limit {
        None => Ok(Page::DEFAULT_LIMIT),
        Some(l) if (1..=i64::from(Page::MAX_LIMIT)).contains(&l) => Ok(l as u32),
        Some(_) => Err(FieldError::new(
            "limit",
            format!("must be between 1 and {}", Page::MAX_LIMIT),
        )),
    }
}
