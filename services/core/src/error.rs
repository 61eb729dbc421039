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
