use otter_core::ErrorClass;

/// Errors at the ZooKeeper boundary.
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    #[error("cannot connect to ZooKeeper at {connect}")]
    Connect {
        connect: String,
        #[source]
        source: zookeeper_client::Error,
    },
    #[error("ZooKeeper operation on {path} failed")]
    Zk {
        path: String,
        #[source]
        source: zookeeper_client::Error,
    },
    #[error("{path} was changed by another process (expected version {expected}); this process is no longer its owner")]
    Conflict { path: String, expected: i32 },
    #[error("{path} holds data that is not a valid {what}")]
    BadData {
        path: String,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("`{0}` is not a valid ZooKeeper root path")]
    BadRoot(String),
}

impl CoordError {
    pub fn class(&self) -> ErrorClass {
        match self {
            CoordError::Connect { .. } => ErrorClass::Transient,
            CoordError::Zk { source, .. } => match source {
                zookeeper_client::Error::NoAuth
                | zookeeper_client::Error::AuthFailed
                | zookeeper_client::Error::InvalidAcl => ErrorClass::Permanent,
                _ => ErrorClass::Transient,
            },
            // Someone else owns the node now: going on would publish twice.
            CoordError::Conflict { .. } | CoordError::BadData { .. } | CoordError::BadRoot(_) => {
                ErrorClass::Permanent
            }
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            CoordError::Connect { .. } => "zk_connect",
            CoordError::Zk { .. } => "zk",
            CoordError::Conflict { .. } => "zk_conflict",
            CoordError::BadData { .. } => "zk_bad_data",
            CoordError::BadRoot(_) => "zk_bad_root",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conflicting_write_is_permanent_and_a_lost_connection_transient() {
        let c = CoordError::Conflict {
            path: "/p".into(),
            expected: 3,
        };
        assert_eq!(c.class(), ErrorClass::Permanent);
        let z = CoordError::Zk {
            path: "/p".into(),
            source: zookeeper_client::Error::ConnectionLoss,
        };
        assert_eq!(z.class(), ErrorClass::Transient);
    }
}
