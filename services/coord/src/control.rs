//! A service's link to the control plane: keeps a ZooKeeper session (reconnecting
//! after expiry), keeps the process registered under `/nodes`, and follows one
//! pipeline's definition and desired state with watches.
//!
//! Invariants:
//! - [`Control::view`] always holds the last definition and state read from ZooKeeper;
//!   while ZooKeeper is unreachable it keeps them (`connected = false`), so work that is
//!   safe without ZooKeeper (apply) goes on, and what is not (capture leadership)
//!   is governed by its lease instead.
//! - A change is seen within one watch round trip; there is no polling of definitions.
//! - The registration is re-created in every new session and refreshed with the
//!   service's status every [`REPORT_EVERY`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};
use zookeeper_client::{Error as ZkError, SessionState};

use crate::topology::{
    now_ms, pipeline_path, state_path, Desired, Instance, LastError, PipelineSpec, StateNode,
    Topology,
};
use crate::zk::{Zk, ZkSettings};
use crate::CoordError;

/// How often a service's registration is refreshed with its status.
pub const REPORT_EVERY: Duration = Duration::from_secs(2);

/// What the control plane currently asks of this service's pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    /// The definition; `None` when the pipeline does not exist (or was deleted).
    pub spec: Option<PipelineSpec>,
    pub desired: Option<Desired>,
    /// Whether the values above were just confirmed by a live session.
    pub connected: bool,
    /// Why the definition could not be read, when it could not.
    pub problem: Option<String>,
}

impl View {
    /// The definition, when the pipeline exists and should run.
    pub fn running(&self) -> Option<&PipelineSpec> {
        match (&self.spec, self.desired) {
            (Some(s), Some(Desired::Running)) => Some(s),
            _ => None,
        }
    }
}

pub struct Control {
    pub pipeline: String,
    view: watch::Receiver<View>,
    session: watch::Receiver<Option<Zk>>,
    instance: Arc<Mutex<Instance>>,
    task: tokio::task::JoinHandle<()>,
}

impl Control {
    /// Connects and registers `instance` (failing when ZooKeeper refuses this
    /// process's credentials or the instance id is taken), then follows `pipeline`
    /// in the background. Unreachable ZooKeeper at start, or a connection lost while
    /// registering, is waited for, with a log line saying so.
    pub async fn start(settings: ZkSettings, instance: Instance) -> Result<Control, CoordError> {
        let pipeline = instance.pipeline.clone();
        let zk = loop {
            let zk = connect_until_up(&settings).await?;
            match register_until_free(&Topology::new(zk.clone()), &instance).await {
                Ok(()) => break zk,
                // ZooKeeper went away between connecting and registering (restarted,
                // say): connect again rather than give up on starting.
                Err(e) if e.class() == otter_core::ErrorClass::Transient => {
                    warn!(instance = %instance.instance, error = %e, "cannot register: ZooKeeper connection lost; connecting again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let (view_tx, view) = watch::channel(View {
            spec: None,
            desired: None,
            connected: false,
            problem: None,
        });
        let (session_tx, session) = watch::channel(Some(zk.clone()));
        let instance = Arc::new(Mutex::new(instance));
        let task = tokio::spawn(follow(
            settings,
            zk,
            pipeline.clone(),
            view_tx,
            session_tx,
            instance.clone(),
        ));
        let mut control = Control {
            pipeline,
            view,
            session,
            instance,
            task,
        };
        // Start with a view read from ZooKeeper, not the empty placeholder.
        let _ = control.view.wait_for(|v| v.connected).await;
        Ok(control)
    }

    pub fn view(&self) -> watch::Receiver<View> {
        self.view.clone()
    }

    /// The live session, when there is one.
    pub fn session(&self) -> watch::Receiver<Option<Zk>> {
        self.session.clone()
    }

    /// Changes what the registration reports (pushed within [`REPORT_EVERY`]).
    pub fn report(&self, f: impl FnOnce(&mut Instance)) {
        self.reporter().set(f);
    }

    /// A handle for tasks that update the registration.
    pub fn reporter(&self) -> Reporter {
        Reporter(self.instance.clone())
    }

    pub fn instance_id(&self) -> String {
        self.instance
            .lock()
            .map(|i| i.instance.clone())
            .unwrap_or_default()
    }

    /// Unregisters at once (a clean shutdown), instead of when the session expires.
    pub async fn close(self) {
        self.task.abort();
        let session = self.session.borrow().clone();
        if let Some(zk) = session {
            let path = crate::topology::node_path(&self.instance_id());
            let _ = zk.client.delete(&path, None).await;
        }
    }

    /// Where this service's errors go to become the pipeline's last error.
    pub fn errors(&self) -> ErrorSink {
        let (service, instance) = self
            .instance
            .lock()
            .map(|i| (i.service.clone(), i.instance.clone()))
            .unwrap_or_default();
        ErrorSink {
            to: Some(Arc::new(SinkTarget {
                session: self.session.clone(),
                pipeline: self.pipeline.clone(),
                service,
                instance,
            })),
        }
    }
}

/// Changes per second between successive readings of a running total.
pub struct RateMeter {
    last: (std::time::Instant, u64),
}

impl Default for RateMeter {
    fn default() -> Self {
        RateMeter {
            last: (std::time::Instant::now(), 0),
        }
    }
}

impl RateMeter {
    /// The rate since the previous reading, rounded to 0.1.
    pub fn read(&mut self, total: u64) -> f64 {
        let now = std::time::Instant::now();
        let secs = now.duration_since(self.last.0).as_secs_f64().max(0.001);
        let rate = total.saturating_sub(self.last.1) as f64 / secs;
        self.last = (now, total);
        (rate * 10.0).round() / 10.0
    }
}

/// Updates a service's registration (see [`Control::report`]).
#[derive(Clone)]
pub struct Reporter(Arc<Mutex<Instance>>);

impl Reporter {
    pub fn set(&self, f: impl FnOnce(&mut Instance)) {
        if let Ok(mut i) = self.0.lock() {
            f(&mut i);
        }
    }
}

/// Records errors as a pipeline's last error (`<root>/pipelines/<p>/error`); best
/// effort: while ZooKeeper is unreachable the service's log line is the record.
/// [`ErrorSink::default`] discards (a service run without a control plane).
#[derive(Clone, Default)]
pub struct ErrorSink {
    to: Option<Arc<SinkTarget>>,
}

struct SinkTarget {
    session: watch::Receiver<Option<Zk>>,
    pipeline: String,
    service: String,
    instance: String,
}

impl ErrorSink {
    /// `class`: transient = being retried; anything else = that work stopped (or, for a
    /// skip policy, went on without the change).
    pub fn report(&self, code: &str, class: otter_core::ErrorClass, message: String) {
        let Some(t) = &self.to else { return };
        let Some(zk) = t.session.borrow().clone() else {
            return;
        };
        let err = LastError {
            service: t.service.clone(),
            instance: t.instance.clone(),
            code: code.to_owned(),
            class: match class {
                otter_core::ErrorClass::Transient => "transient",
                _ => "permanent",
            }
            .to_owned(),
            message,
            at_ms: now_ms(),
        };
        let pipeline = t.pipeline.clone();
        // Reports come from tasks; a plain thread has no runtime to write with.
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            if let Err(e) = Topology::new(zk).report_error(&pipeline, &err).await {
                warn!(pipeline, error = %e, "cannot record the pipeline's last error in ZooKeeper");
            }
        });
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn snapshot(instance: &Mutex<Instance>, touch: bool) -> Option<Instance> {
    let mut i = instance.lock().ok()?;
    if touch {
        i.updated_ms = now_ms();
    }
    Some(i.clone())
}

async fn connect_until_up(settings: &ZkSettings) -> Result<Zk, CoordError> {
    let mut delay = Duration::from_millis(500);
    loop {
        match Zk::connect(settings).await {
            Ok(zk) => return Ok(zk),
            Err(e) if e.class() == otter_core::ErrorClass::Transient => {
                warn!(connect = %settings.connect, error = %otter_core::error::chain(&e), "waiting for ZooKeeper");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Registers; while a previous session of the same instance id (a process restarted
/// faster than its old session expired) still holds the node, waits for it to go.
async fn register_until_free(topo: &Topology, instance: &Instance) -> Result<(), CoordError> {
    let deadline = tokio::time::Instant::now() + topo.zk.client.session_timeout() * 2;
    let mut said = false;
    loop {
        match topo.register(instance).await {
            Err(CoordError::Refused(msg)) if tokio::time::Instant::now() < deadline => {
                if !said {
                    info!(instance = %instance.instance, "waiting for an earlier session's registration to expire: {msg}");
                    said = true;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            r => return r,
        }
    }
}

async fn follow(
    settings: ZkSettings,
    mut zk: Zk,
    pipeline: String,
    view_tx: watch::Sender<View>,
    session_tx: watch::Sender<Option<Zk>>,
    instance: Arc<Mutex<Instance>>,
) {
    loop {
        let ended = watch_session(&zk, &pipeline, &view_tx, &instance).await;
        warn!(pipeline, reason = %ended, "ZooKeeper session ended; keeping the last known pipeline definition and reconnecting");
        let _ = session_tx.send(None);
        view_tx.send_modify(|v| v.connected = false);
        loop {
            match connect_until_up(&settings).await {
                Ok(z) => {
                    if let Some(i) = snapshot(&instance, false) {
                        if let Err(e) = register_until_free(&Topology::new(z.clone()), &i).await {
                            warn!(error = %e, "cannot register again; retrying");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            continue;
                        }
                    }
                    zk = z;
                    break;
                }
                Err(e) => {
                    warn!(error = %otter_core::error::chain(&e), "ZooKeeper refuses this process; retrying");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
        let _ = session_tx.send(Some(zk.clone()));
        info!(pipeline, "ZooKeeper session re-established");
    }
}

/// Follows the pipeline in one session; returns why the session ended.
async fn watch_session(
    zk: &Zk,
    pipeline: &str,
    view_tx: &watch::Sender<View>,
    instance: &Arc<Mutex<Instance>>,
) -> String {
    let client = &zk.client;
    let topo = Topology::new(zk.clone());
    let mut states = client.state_watcher();
    let mut report = tokio::time::interval(REPORT_EVERY);
    let spec_path = pipeline_path(pipeline);
    let state_path = state_path(pipeline);
    loop {
        // Read both nodes and leave a watch on each.
        let spec = client.get_and_watch_data(&spec_path).await;
        let state = client.get_and_watch_data(&state_path).await;
        let (spec, spec_w) = match spec {
            Ok((data, _, w)) => (Some(PipelineSpec::from_json(&data, &spec_path)), Some(w)),
            Err(ZkError::NoNode) => match client.check_and_watch_stat(&spec_path).await {
                Ok((_, w)) => (None, Some(w)),
                Err(e) => (Some(Err(CoordError::zk(&spec_path, e))), None),
            },
            Err(e) => (Some(Err(CoordError::zk(&spec_path, e))), None),
        };
        let (desired, state_w) = match state {
            Ok((data, _, w)) => (
                serde_json::from_slice::<StateNode>(&data)
                    .ok()
                    .map(|s| s.desired),
                Some(w),
            ),
            Err(ZkError::NoNode) => (
                None,
                client
                    .check_and_watch_stat(&state_path)
                    .await
                    .ok()
                    .map(|(_, w)| w),
            ),
            Err(_) => (None, None),
        };
        let unreachable = matches!(&spec, Some(Err(CoordError::Zk { .. })));
        if !unreachable {
            let (spec, problem) = match spec {
                None => (None, None),
                Some(Ok(s)) => (Some(s), None),
                Some(Err(e)) => (None, Some(otter_core::error::chain(&e))),
            };
            view_tx.send_if_modified(|v| {
                let new = View {
                    spec,
                    desired,
                    connected: true,
                    problem,
                };
                let changed = *v != new;
                *v = new;
                changed
            });
        }
        let spec_changed = async {
            match spec_w {
                Some(w) => {
                    w.changed().await;
                }
                None => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        };
        let state_changed = async {
            match state_w {
                Some(w) => {
                    w.changed().await;
                }
                None => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        };
        tokio::pin!(spec_changed, state_changed);
        loop {
            tokio::select! {
                _ = &mut spec_changed => break,
                _ = &mut state_changed => break,
                s = states.changed() => match s {
                    SessionState::Expired | SessionState::Closed | SessionState::AuthFailed => {
                        return format!("{s:?}");
                    }
                    SessionState::Disconnected => {
                        view_tx.send_modify(|v| v.connected = false);
                        warn!(pipeline, "ZooKeeper unreachable: reconnecting; the last known pipeline definition and state stay in force");
                    }
                    _ => break,
                },
                _ = report.tick() => {
                    if let Some(i) = snapshot(instance, true) {
                        if let Err(e) = topo.update_instance(&i).await {
                            if matches!(e, CoordError::Zk { source: ZkError::NoNode, .. }) {
                                // Deleted by hand or with a deleted pipeline: register again.
                                let _ = topo.register(&i).await;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The command line of `otter-capture serve` and `otter-apply serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// The pipeline to serve.
    #[arg(long)]
    pub pipeline: String,
    /// This process's id in ZooKeeper (default `<service>-<host>-<pid>`).
    #[arg(long)]
    pub instance: Option<String>,
    #[command(flatten)]
    pub zk: crate::zk::ZkArgs,
    /// Where to serve /metrics, /healthz and /readyz (`host:port`; port 0 = any free
    /// port, logged and shown by `otterctl nodes`).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub metrics_listen: String,
}

impl ServeArgs {
    /// This process's registration as `service`, with its metrics endpoint.
    pub fn registration(&self, service: &str, endpoint: &str) -> Instance {
        let id = self
            .instance
            .clone()
            .unwrap_or_else(|| crate::topology::default_instance(service));
        let mut me = Instance::new(&id, service, &self.pipeline);
        me.metrics = endpoint.to_owned();
        me
    }
}

/// Turns true on SIGINT or SIGTERM: every service's shutdown request.
pub fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let _ = tx.send(true);
    });
    rx
}
