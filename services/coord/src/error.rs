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
    #[error("ZooKeeper refused access to {path}: this process has no or other digest credentials than the installation (set OTTER_ZK_DIGEST or --zk-digest-file)")]
    Denied { path: String },
    #[error("{what} {name} does not exist")]
    Missing { what: &'static str, name: String },
    #[error("{0}")]
    Refused(String),
}

impl CoordError {
    /// The error of a failed operation on `path`; access refusals get their own
    /// variant so the message says what to do.
    pub fn zk(path: &str, source: zookeeper_client::Error) -> CoordError {
        match source {
            zookeeper_client::Error::NoAuth | zookeeper_client::Error::AuthFailed => {
                CoordError::Denied {
                    path: path.to_owned(),
                }
            }
            source => CoordError::Zk {
                path: path.to_owned(),
                source,
            },
        }
    }
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
            CoordError::Conflict { .. }
            | CoordError::BadData { .. }
            | CoordError::BadRoot(_)
            | CoordError::Denied { .. }
            | CoordError::Missing { .. }
            | CoordError::Refused(_) => ErrorClass::Permanent,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            CoordError::Connect { .. } => "zk_connect",
            CoordError::Zk { .. } => "zk",
            CoordError::Conflict { .. } => "zk_conflict",
            CoordError::BadData { .. } => "zk_bad_data",
            CoordError::BadRoot(_) => "zk_bad_root",
            CoordError::Denied { .. } => "zk_denied",
            CoordError::Missing { .. } => "zk_missing",
            CoordError::Refused(_) => "zk_refused",
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
