//! A typed method on [`Client`](crate::Client) for every REST route, one module per
//! resource as the server groups them (chat-http's `routes`). Each is a thin `impl Client`
//! block over the core's request path, which adds the token, refreshes it and turns error
//! answers into [`Error::Api`](crate::Error::Api).

mod admin;
mod attachments;
mod auth;
mod conversations;
mod messages;
mod users;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// What must be escaped in one path segment (RFC 3986's `pchar` complement): an emoji, or a
/// name given by a caller, can then never add a segment or a query to the path.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|');

/// `text` escaped for use as one path segment.
fn segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn a_segment_cannot_leave_its_place_in_the_path() {
        assert_eq!(segment("a/b?c#d"), "a%2Fb%3Fc%23d");
        assert_eq!(segment("100%"), "100%25");
    }

    #[test]
    fn an_emoji_is_sent_as_its_utf8_bytes() {
        assert_eq!(segment("👍"), "%F0%9F%91%8D");
    }
}
