//! Decoding stored timestamps quickly.
//!
//! Diesel reads an SQLite timestamp by trying its list of formats through chrono's
//! format-string parser, which re-reads the format string for every value; a page of history
//! holds a hundred timestamps, and that parsing was a tenth of the server's time serving it.
//! Every timestamp here was written by Diesel in one format, so [`Stored`] parses that format
//! from items prepared once, and falls back to chrono's general parsers for anything else.

use chrono::format::{Fixed, Item, Numeric, Pad, Parsed, parse};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::sql_types::{Text, Timestamp};
use diesel::sqlite::{Sqlite, SqliteValue};

/// A timestamp column read back from the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromSqlRow)]
pub struct Stored(pub NaiveDateTime);

impl Stored {
    pub fn utc(self) -> DateTime<Utc> {
        self.0.and_utc()
    }
}

/// `%Y-%m-%d %H:%M:%S%.f`: how Diesel writes a `NaiveDateTime` to SQLite.
const WRITTEN: &[Item<'static>] = &[
    Item::Numeric(Numeric::Year, Pad::Zero),
    Item::Literal("-"),
    Item::Numeric(Numeric::Month, Pad::Zero),
    Item::Literal("-"),
    Item::Numeric(Numeric::Day, Pad::Zero),
    Item::Space(" "),
    Item::Numeric(Numeric::Hour, Pad::Zero),
    Item::Literal(":"),
    Item::Numeric(Numeric::Minute, Pad::Zero),
    Item::Literal(":"),
    Item::Numeric(Numeric::Second, Pad::Zero),
    Item::Fixed(Fixed::Nanosecond),
];

fn parse_written(text: &str) -> Option<NaiveDateTime> {
    let mut parsed = Parsed::new();
    parse(&mut parsed, text, WRITTEN.iter()).ok()?;
    parsed.to_naive_datetime_with_offset(0).ok()
}

impl FromSql<Timestamp, Sqlite> for Stored {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Sqlite>>::from_sql(value)?;
        parse_written(&text)
            .or_else(|| text.parse::<NaiveDateTime>().ok())
            .or_else(|| NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f").ok())
            .map(Stored)
            .ok_or_else(|| format!("not a timestamp: {text:?}").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    #[test]
    fn the_written_format_and_iso_8601_both_read_back_exactly() {
        let at =
            NaiveDateTime::parse_from_str("2026-11-25 17:03:04.123456789", "%F %T%.f").unwrap();
        assert_eq!(parse_written(&at.format("%F %T%.f").to_string()), Some(at));
        let whole = at.with_nanosecond(0).unwrap();
        assert_eq!(
            parse_written(&whole.format("%F %T%.f").to_string()),
            Some(whole)
        );
        assert_eq!(
            "2026-11-25T17:03:04.123456789"
                .parse::<NaiveDateTime>()
                .ok(),
            Some(at)
        );
        assert_eq!(parse_written("2026-11-25T17:03:04"), None);
        assert_eq!(parse_written("yesterday"), None);
    }
}
