//! Keeping nginx's routes equal to Marathon's healthy running tasks: read the apps, render the
//! routes, install them if nginx accepts them and they changed, reload nginx.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::follow::Signals;
use super::marathons::{Backoff, Marathons, error_chain};
use super::nginx::{Nginx, NginxError};
use super::render::render;
use super::route::{RoutingTable, VirtualHost};

/// The settings of one route sync.
#[derive(Debug, Clone)]
pub struct RouteSyncConfig {
    pub domain: VirtualHost,
    /// Where every virtual host listens: nginx's `listen` argument (`80`, `127.0.0.1:8080`).
    pub listen: String,
    /// The longest time between two full reads of Marathon's apps.
    pub resync: Duration,
    /// The shortest time between two nginx reloads.
    pub min_reload_interval: Duration,
    /// How long to gather a burst of events before reading the apps once for all of them.
    pub coalesce: Duration,
}

/// What one sync did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The routes were already what nginx serves.
    Unchanged,
    /// New routes were installed and nginx reloaded.
    Reloaded,
    /// The routes are the ones nginx rejected last time, with no app to blame alone; the last
    /// good ones stay served.
    StillRejected,
}

/// Why one sync did not bring nginx up to date; the next sync tries again.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("no Marathon answered; nginx keeps the last good routes")]
    Marathon(#[source] super::marathons::MarathonError),
    #[error("cannot install or serve the new routes")]
    Nginx(#[source] NginxError),
}

/// The route sync's memory between syncs.
#[derive(Debug)]
pub struct RouteSync {
    config: RouteSyncConfig,
    marathons: Arc<Marathons>,
    nginx: Nginx,
    signals: Arc<Signals>,
    /// The routes text in the routes file, once lb-sync installed one.
    installed: Option<String>,
    /// The routes text nginx was last reloaded with.
    served: Option<String>,
    /// The last routes text nginx rejected, so the same text is not checked again and again.
    rejected: Option<Rejected>,
    last_reload: Option<Instant>,
}

impl RouteSync {
    /// A route sync that has installed nothing yet: its first sync installs and reloads.
    pub fn new(config: RouteSyncConfig, marathons: Arc<Marathons>, nginx: Nginx, signals: Arc<Signals>) -> RouteSync {
        RouteSync {
            config,
            marathons,
            nginx,
            signals,
            installed: None,
            served: None,
            rejected: None,
            last_reload: None,
        }
    }

    /// Runs until `shutdown` completes: syncs after each burst of events (and on every
    /// reconnect, which the follower signals as a change), and in full every `resync`.
    /// A failed sync is logged and retried with the next trigger or after a short delay.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        // Failed syncs are retried with backoff, so an outage does not flood Marathon or the log.
        let mut retry = Backoff::new(self.config.coalesce.max(Duration::from_millis(250)), Duration::from_secs(5));
        let mut resync = tokio::time::interval(self.config.resync);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut due: Option<Instant> = None;
        loop {
            let sleep_until = due.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                // Cancel-safe: a dropped `Notified` passes its wakeup on to the next waiter.
                () = self.signals.changes.notified() => {
                    // Coalesce: the first event of a burst starts the clock, the others ride
                    // along; an event also cuts short a retry backoff (Marathon is back).
                    let soon = Instant::now() + self.config.coalesce;
                    due = Some(due.map_or(soon, |due| due.min(soon)));
                }
                // Cancel-safe: `tick` only consumes a tick when it completes.
                _ = resync.tick() => {
                    due = Some(Instant::now());
                }
                // Cancel-safe: a sleep can be recreated at any time with the same deadline.
                () = tokio::time::sleep_until(sleep_until), if due.is_some() => {
                    due = None;
                    match self.sync().await {
                        Ok(SyncOutcome::StillRejected) => {
                            tracing::warn!("Marathon's routes are still the ones nginx rejected; serving the last good ones");
                        }
                        Ok(outcome) => {
                            retry.reset();
                            tracing::debug!(?outcome, "routes in sync");
                        }
                        // Rejected routes will not change by trying again: wait for Marathon to change.
                        Err(error @ SyncError::Nginx(NginxError::Rejected { .. })) => {
                            tracing::error!(error = %error_chain(&error), "route sync failed");
                        }
                        Err(error) => {
                            tracing::error!(error = %error_chain(&error), "route sync failed");
                            due = Some(Instant::now() + retry.next_delay());
                        }
                    }
                }
                // Cancel-safe: `shutdown` is pinned and polled again on every turn.
                () = &mut shutdown => return,
            }
        }
    }

    /// Reads Marathon once and brings nginx up to date.
    ///
    /// When nginx rejects the new routes, the apps whose routes it refuses alone are left out
    /// and the rest installed; if that is refused too, the previous file stays installed.
    ///
    /// Fails when no Marathon answers (nothing is changed), when nginx rejects the new routes
    /// and no app can be left out to fix them, or when nginx cannot be reloaded (retried next time).
    pub async fn sync(&mut self) -> Result<SyncOutcome, SyncError> {
        let followed = self.marathons.current();
        let (apps, answered) = match self.marathons.apps().await {
            Ok(found) => found,
            Err(error) => {
                self.signals.request_reconnect();
                return Err(SyncError::Marathon(error));
            }
        };
        if answered != followed {
            // The followed Marathon failed to answer: its stream may be dead without knowing it.
            self.signals.request_reconnect();
        }
        let table = RoutingTable::from_apps(&apps.apps, &self.config.domain);
        let mut routes = render(&table, &self.config.listen);
        match &self.rejected {
            Some(rejected) if rejected.full == routes => match &rejected.accepted {
                Some(accepted) => routes = accepted.clone(),
                None => return Ok(SyncOutcome::StillRejected),
            },
            _ => {}
        }
        if self.installed.as_deref() != Some(routes.as_str()) {
            match self.nginx.install(&routes).await {
                Ok(()) => {
                    let backends: usize = table.routes.iter().map(|r| r.backends.len()).sum();
                    tracing::info!(apps = table.routes.len(), backends, "installed new routes");
                }
                Err(error @ NginxError::Rejected { .. }) => {
                    tracing::error!(error = %error_chain(&error), "nginx rejected the routes; looking for the apps it refuses");
                    let accepted = self.without_refused_routes(&table).await;
                    self.rejected = Some(Rejected {
                        full: routes,
                        accepted: accepted.clone(),
                    });
                    routes = accepted.ok_or(SyncError::Nginx(error))?;
                }
                Err(error) => return Err(SyncError::Nginx(error)),
            }
            self.installed = Some(routes);
        }
        if self.served == self.installed {
            return Ok(SyncOutcome::Unchanged);
        }
        if let Some(last) = self.last_reload {
            tokio::time::sleep_until(last + self.config.min_reload_interval).await;
        }
        self.last_reload = Some(Instant::now());
        self.nginx.reload().await.map_err(SyncError::Nginx)?;
        self.served = self.installed.clone();
        tracing::info!("nginx reloaded");
        Ok(SyncOutcome::Reloaded)
    }

    /// After nginx rejected the routes of `table`: checks each app's route alone, leaves out the
    /// ones nginx refuses, and installs the others if nginx accepts them together. Returns the
    /// installed text, or `None` when even that was refused (the last good routes stay).
    ///
    /// One `nginx -t` per app, paid only once per rejected set of routes, so one bad app (say
    /// a vhost label longer than the main config allows) cannot freeze every other app's routes.
    async fn without_refused_routes(&self, table: &RoutingTable) -> Option<String> {
        let mut kept = RoutingTable::default();
        for route in &table.routes {
            let alone = RoutingTable {
                routes: vec![route.clone()],
            };
            match self.nginx.check(&render(&alone, &self.config.listen)).await {
                Ok(()) => kept.routes.push(route.clone()),
                Err(error @ NginxError::Rejected { .. }) => {
                    tracing::error!(app = %route.app_id, error = %error_chain(&error), "nginx refuses this app's route; leaving it out");
                }
                Err(error) => {
                    // Not nginx's verdict on this route: blaming it could drop a good app.
                    tracing::error!(error = %error_chain(&error), "cannot check routes one by one");
                    return None;
                }
            }
        }
        if kept.routes.len() == table.routes.len() {
            // Every route passes alone but not together: nothing to leave out safely.
            return None;
        }
        let routes = render(&kept, &self.config.listen);
        match self.nginx.install(&routes).await {
            Ok(()) => {
                tracing::warn!(
                    apps = kept.routes.len(),
                    left_out = table.routes.len() - kept.routes.len(),
                    "installed the routes nginx accepts"
                );
                Some(routes)
            }
            Err(error) => {
                tracing::error!(error = %error_chain(&error), "nginx rejects the remaining routes too; keeping the last good ones");
                None
            }
        }
    }
}

/// Routes nginx rejected, and what was installed instead.
#[derive(Debug)]
struct Rejected {
    /// The full routes text rendered from Marathon.
    full: String,
    /// The same without the apps nginx refuses, if nginx accepted that.
    accepted: Option<String>,
}
