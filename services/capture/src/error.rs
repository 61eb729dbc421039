//! The capture service's errors: one enum per boundary, wrapped by [`CaptureError`].

use otter_core::ErrorClass;

use crate::binlog::DecodeError;
use crate::config::ConfigError;
use crate::publish::PublishError;
use crate::source::SourceError;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Coord(#[from] otter_coord::CoordError),
    #[error("capture leadership lost (ZooKeeper lease expired or election node gone) at {position}: stopped publishing; a standby resumes from the stored position")]
    Fenced { position: String },
}

impl CaptureError {
    pub fn class(&self) -> ErrorClass {
        match self {
            CaptureError::Config(_) => ErrorClass::Permanent,
            CaptureError::Source(e) => e.class(),
            // A table-specific decode problem still stops capture: the binlog is one
            // stream, and skipping a table's events would lose them.
            CaptureError::Decode(_) => ErrorClass::Permanent,
            CaptureError::Publish(e) => e.class(),
            CaptureError::Coord(e) => e.class(),
            CaptureError::Fenced { .. } => ErrorClass::Permanent,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            CaptureError::Config(_) => "config",
            CaptureError::Source(e) => e.code(),
            CaptureError::Decode(e) => e.code(),
            CaptureError::Publish(e) => e.code(),
            CaptureError::Coord(e) => e.code(),
            CaptureError::Fenced { .. } => "fenced",
        }
    }
}

pub use otter_core::error::chain;
