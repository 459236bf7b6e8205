//! The `dashboard` feature: the dashboard's JSON and a self-contained page
//! that draws it, served with axum.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Json};
use axum::routing::get;
use secrecy::{ExposeSecret as _, SecretString};
use subtle::ConstantTimeEq as _;
use tokio::sync::oneshot;

use crate::error::{ConfigError, Error};

/// The page: inline CSS, and inline script drawing SVG; no request leaves
/// the machine it is served from.
const PAGE: &str = include_str!("page.html");

/// Where and how [`Ndf::serve_dashboard_with`](crate::Ndf::serve_dashboard_with) serves the dashboard.
///
/// ```no_run
/// use std::time::Duration;
/// use ndf::{DashboardOptions, Ndf};
///
/// # #[tokio::main] async fn main() -> Result<(), ndf::Error> {
/// let ndf = Ndf::builder().build()?;
/// let dashboard = ndf
///     .serve_dashboard_with(DashboardOptions::new(([127, 0, 0, 1], 8686)).refresh(Duration::from_secs(10)))
///     .await?;
/// println!("dashboard on http://{}/", dashboard.local_addr());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct DashboardOptions {
    addr: SocketAddr,
    refresh: Duration,
    allow_remote: bool,
    token: Option<std::sync::Arc<SecretString>>,
}

impl DashboardOptions {
    /// Serve on `addr` (port 0 picks a free port), refreshing every 30 s.
    pub fn new(addr: impl Into<SocketAddr>) -> Self {
        Self {
            addr: addr.into(),
            refresh: Duration::from_secs(30),
            allow_remote: false,
            token: None,
        }
    }

    /// How often the page polls for new data (default 30 s; at least 1 s).
    pub fn refresh(mut self, every: Duration) -> Self {
        self.refresh = every.max(Duration::from_secs(1));
        self
    }

    /// Allows an address other machines can reach (not loopback): the page
    /// shows pattern names, domains and alerts, so a remote dashboard also
    /// needs a [`bearer_token`](Self::bearer_token).
    pub fn allow_remote(mut self) -> Self {
        self.allow_remote = true;
        self
    }

    /// Answers only requests with `Authorization: Bearer <token>` (401
    /// otherwise); required with [`allow_remote`](Self::allow_remote).
    pub fn bearer_token(mut self, token: impl Into<SecretString>) -> Self {
        self.token = Some(std::sync::Arc::new(token.into()));
        self
    }
}

/// A running dashboard server; dropping it (or [`DashboardHandle::shutdown`])
/// stops it.
#[derive(Debug)]
pub struct DashboardHandle {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl DashboardHandle {
    /// The address the server listens on (with the port picked for port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections and waits for open requests to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for DashboardHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Where the served dashboard's data comes from (the runtime).
pub(crate) trait DashboardSource: Send + Sync + 'static {
    /// The dashboard as it is now, with the rows `query` asks for. Called
    /// on tokio's blocking pool, never on an async worker: building it may
    /// wait for the statistics.
    fn dashboard(&self, query: &super::DashboardQuery) -> super::Dashboard;
}

#[derive(Clone)]
struct App {
    source: std::sync::Arc<dyn DashboardSource>,
    /// One dashboard is built at a time: clients that ask together wait
    /// their turn instead of taking every core.
    building: std::sync::Arc<tokio::sync::Semaphore>,
    page: std::sync::Arc<str>,
    token: Option<std::sync::Arc<SecretString>>,
}

impl App {
    /// Whether `headers` carry the bearer token, when one is required
    /// (compared in constant time).
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        bool::from(given.as_bytes().ct_eq(token.expose_secret().as_bytes()))
    }
}

fn unauthorized() -> axum::response::Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "the dashboard needs `Authorization: Bearer <token>`\n",
    )
        .into_response()
}

/// The dashboard's routes, `/` (the page) and `/api/dashboard` (its data),
/// as a router to serve or to nest in an app behind its own middleware.
pub(crate) fn router(
    source: std::sync::Arc<dyn DashboardSource>,
    refresh: Duration,
    token: Option<std::sync::Arc<SecretString>>,
) -> Router {
    let page = PAGE.replace("{{REFRESH_SECS}}", &refresh.as_secs().max(1).to_string());
    let app = App {
        source,
        building: std::sync::Arc::new(tokio::sync::Semaphore::new(1)),
        page: page.into(),
        token,
    };
    Router::new()
        .route("/", get(page_handler))
        .route("/api/dashboard", get(data_handler))
        .fallback(not_found)
        .with_state(app)
}

/// Serves the dashboard of `source` as `options` say.
pub(crate) async fn serve(
    source: std::sync::Arc<dyn DashboardSource>,
    options: DashboardOptions,
) -> Result<DashboardHandle, Error> {
    if !options.addr.ip().is_loopback() && !options.allow_remote {
        return Err(ConfigError::new(
            "dashboard address",
            options.addr,
            "is not a loopback address; other machines could read the dashboard. \
                 Use `DashboardOptions::allow_remote()` with a `bearer_token` if that is meant",
        )
        .into());
    }
    if !options.addr.ip().is_loopback() && options.token.is_none() {
        return Err(ConfigError::new(
            "dashboard address",
            options.addr,
            "is reachable by other machines, and the dashboard has no authentication of its own: \
                 set `DashboardOptions::bearer_token`, or nest `Ndf::dashboard_router` behind your own",
        )
        .into());
    }
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .map_err(|e| {
            Error::Telemetry(format!(
                "cannot serve the dashboard on {}: {e}",
                options.addr
            ))
        })?;
    let addr = listener.local_addr().map_err(|e| {
        Error::Telemetry(format!(
            "cannot serve the dashboard on {}: {e}",
            options.addr
        ))
    })?;
    let router = router(source, options.refresh, options.token);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
        if let Err(error) = served {
            tracing::warn!(target: "ndf::dashboard", %error, "the dashboard server stopped");
        }
    });
    Ok(DashboardHandle {
        addr,
        stop: Some(stop),
        task,
    })
}

async fn page_handler(State(app): State<App>, headers: HeaderMap) -> axum::response::Response {
    if !app.authorized(&headers) {
        return unauthorized();
    }
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html(app.page.to_string()),
    )
        .into_response()
}

async fn data_handler(
    State(app): State<App>,
    headers: HeaderMap,
    query: Result<Query<super::DashboardQuery>, QueryRejection>,
) -> axum::response::Response {
    if !app.authorized(&headers) {
        return unauthorized();
    }
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => {
            return (
                StatusCode::BAD_REQUEST,
                format!(
                    "{}: /api/dashboard takes offset and limit (whole numbers) and domain\n",
                    rejection.body_text()
                ),
            )
                .into_response();
        }
    };
    let Ok(_turn) = app.building.acquire().await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    // Built on the blocking pool: the statistics lock is never waited for
    // on an async worker that runs workflows.
    let source = std::sync::Arc::clone(&app.source);
    match tokio::task::spawn_blocking(move || source.dashboard(&query)).await {
        Ok(dashboard) => ([(header::CACHE_CONTROL, "no-store")], Json(dashboard)).into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the dashboard could not be built: {error}\n"),
        )
            .into_response(),
    }
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        "not found: the dashboard serves / and /api/dashboard\n",
    )
}
