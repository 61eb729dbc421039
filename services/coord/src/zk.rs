//! Connecting to ZooKeeper: one settings type for every service and the CLI, the
//! installation root as a chroot, and the ACL every created node gets.
//!
//! Invariant: with digest credentials configured (`OTTER_ZK_DIGEST` or a digest file),
//! every node otter creates carries `auth` ACLs (only that identity may read or write
//! it), and a process with other or no credentials is refused at connect time with
//! [`CoordError::Denied`], before it does anything.

use std::path::Path;
use std::time::Duration;

use zookeeper_client::{Acls, Client, CreateMode, CreateOptions};

use crate::CoordError;

/// Environment variable holding `user:password` for ZooKeeper's digest scheme.
pub const DIGEST_ENV: &str = "OTTER_ZK_DIGEST";

#[derive(Debug, Clone)]
pub struct ZkSettings {
    /// `host:port[,host:port]`.
    pub connect: String,
    /// Root znode of this otter installation (e.g. `/otter`).
    pub root: String,
    pub session_timeout: Duration,
    /// `user:password` for the digest scheme; `None` = open ACLs.
    pub digest: Option<String>,
}

impl ZkSettings {
    pub fn new(connect: &str, root: &str, session_timeout: Duration) -> ZkSettings {
        ZkSettings {
            connect: connect.to_owned(),
            root: root.to_owned(),
            session_timeout,
            digest: None,
        }
    }

    /// Takes the digest credentials from `file` (first line) when given, else from
    /// `OTTER_ZK_DIGEST` when set.
    pub fn with_digest_from(mut self, file: Option<&Path>) -> Result<ZkSettings, String> {
        let digest = match file {
            Some(f) => Some(
                std::fs::read_to_string(f)
                    .map_err(|e| format!("cannot read ZooKeeper digest file {}: {e}", f.display()))?
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            ),
            None => std::env::var(DIGEST_ENV).ok().filter(|s| !s.is_empty()),
        };
        if let Some(d) = &digest {
            if !d.contains(':') {
                return Err("ZooKeeper digest credentials must be `user:password`".into());
            }
        }
        self.digest = digest;
        Ok(self)
    }
}

/// A connected client, scoped to the installation root, that knows which ACL its
/// nodes get.
#[derive(Debug, Clone)]
pub struct Zk {
    pub client: Client,
    secured: bool,
}

impl Zk {
    /// Connects, authenticates when credentials are set, creates the root if needed
    /// and checks this process may read it.
    pub async fn connect(s: &ZkSettings) -> Result<Zk, CoordError> {
        let mut connector = Client::connector()
            .with_session_timeout(s.session_timeout)
            .with_connection_timeout(Duration::from_secs(5));
        if let Some(d) = &s.digest {
            connector = connector.with_auth("digest", d.as_bytes());
        }
        let client = connector
            .connect(&s.connect)
            .await
            .map_err(|source| CoordError::Connect {
                connect: s.connect.clone(),
                source,
            })?;
        let zk = Zk {
            client,
            secured: s.digest.is_some(),
        };
        let root = s.root.trim_end_matches('/');
        if root.is_empty() {
            return Ok(zk);
        }
        if !root.starts_with('/') {
            return Err(CoordError::BadRoot(s.root.clone()));
        }
        match zk.client.mkdir(root, &zk.persistent()).await {
            Ok(()) | Err(zookeeper_client::Error::NodeExists) => {}
            Err(source) => return Err(CoordError::zk(root, source)),
        }
        let client = zk
            .client
            .chroot(root.to_owned())
            .map_err(|_| CoordError::BadRoot(s.root.clone()))?;
        let zk = Zk { client, ..zk };
        // Reading needs the READ permission: a process without the installation's
        // credentials stops here.
        zk.client
            .get_data("/")
            .await
            .map_err(|source| CoordError::zk(root, source))?;
        Ok(zk)
    }

    pub fn acls(&self) -> Acls<'static> {
        if self.secured {
            Acls::creator_all()
        } else {
            Acls::anyone_all()
        }
    }

    pub fn persistent(&self) -> CreateOptions<'static> {
        CreateMode::Persistent.with_acls(self.acls())
    }

    pub fn ephemeral(&self) -> CreateOptions<'static> {
        CreateMode::Ephemeral.with_acls(self.acls())
    }
}

/// The command-line options every otter program uses to reach ZooKeeper.
#[derive(Debug, Clone, clap::Args)]
pub struct ZkArgs {
    /// ZooKeeper connect string, `host:port[,host:port]`.
    #[arg(long, env = "OTTER_ZK", default_value = "127.0.0.1:2181")]
    pub zookeeper: String,
    /// Root znode of the otter installation.
    #[arg(long, env = "OTTER_ZK_ROOT", default_value = "/otter")]
    pub zk_root: String,
    /// ZooKeeper session timeout, milliseconds: how long after a crash its
    /// registrations (and a capture leader's election node) disappear.
    #[arg(long, default_value_t = 6000)]
    pub zk_session_timeout_ms: u64,
    /// File whose first line is `user:password` for ZooKeeper digest ACLs (else
    /// `OTTER_ZK_DIGEST`, else open ACLs).
    #[arg(long)]
    pub zk_digest_file: Option<std::path::PathBuf>,
}

impl ZkArgs {
    pub fn settings(&self) -> Result<ZkSettings, String> {
        ZkSettings::new(
            &self.zookeeper,
            &self.zk_root,
            Duration::from_millis(self.zk_session_timeout_ms),
        )
        .with_digest_from(self.zk_digest_file.as_deref())
    }
}
