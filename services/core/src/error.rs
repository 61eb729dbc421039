//! What a caller should do about an error, independent of where it happened.

use crate::event::TableId;

/// How an error affects the pipeline. Every boundary error enum maps each of its
/// variants to one of these (`fn class(&self) -> ErrorClass`), never by message text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorClass {
    /// Retry with backoff from the last committed position; nothing is lost or repeated.
    Transient,
    /// This table cannot go on: park it, keep the rest of the pipeline running, alert.
    Table(TableId),
    /// The pipeline cannot go on: stop at the last committed position, alert.
    Permanent,
}

/// `outer: inner: innermost`, for errors printed to an operator (each level's text once).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = inner.source();
    }
    s
}
