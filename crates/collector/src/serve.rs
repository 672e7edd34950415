//! The accept loop both binaries share: HTTP/1.1 over plain TCP, a graceful exit on
//! SIGTERM/SIGINT, and the collector's "down for a while" fault, which needs control over the
//! listening socket that off-the-shelf serve functions do not give.

use std::error::Error;
use std::future::pending;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::HttpService;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, timeout, Instant};

type BoxError = Box<dyn Error + Send + Sync>;

/// How long in-flight requests may take to finish once a shutdown is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A request to stop accepting connections for `duration`, as if the server were down.
#[derive(Debug)]
pub struct Refusal {
    pub duration: Duration,
    /// Signalled once the listening socket is closed, so the caller can answer only then
    /// and a test's next connect is sure to be refused.
    pub closed: oneshot::Sender<()>,
}

/// Prints the `LISTENING <addr>` line that tests and scripts wait for (port 0 gets a free
/// port, and this is how they learn which).
pub fn announce(addr: SocketAddr) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "LISTENING {addr}")?;
    stdout.flush()
}

/// Binds `listen` and [`announce`]s the address it got.
pub async fn bind_and_announce(listen: &str) -> Result<TcpListener, String> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("binding {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    announce(addr).map_err(|e| e.to_string())?;
    Ok(listener)
}

/// Serves `service` on `listener` until SIGTERM or SIGINT, then lets in-flight requests
/// finish (up to a grace period).
///
/// Each [`Refusal`] received on `refusals` closes the listening socket, so connects are
/// refused, asks open connections to close once their current request is answered, and
/// re-binds the same address when the refusal ends.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    mut refusals: Option<mpsc::UnboundedReceiver<Refusal>>,
) -> io::Result<()>
where
    S: HttpService<Incoming, ResBody = B> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let addr = listener.local_addr()?;
    let mut listener = Some(listener);
    let mut reopen_at: Option<Instant> = None;
    let mut connections = GracefulShutdown::new();
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            accepted = accept(listener.as_ref()) => match accepted {
                Ok(stream) => {
                    let connection = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service.clone());
                    let connection = connections.watch(connection);
                    // A client hanging up mid-request is normal here; nothing to report.
                    tokio::spawn(async move { let _ = connection.await; });
                }
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    eprintln!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            refusal = next_refusal(&mut refusals) => {
                drop(listener.take());
                tokio::spawn(std::mem::take(&mut connections).shutdown());
                reopen_at = Some(Instant::now() + refusal.duration);
                // The caller may have gone away; the refusal stands regardless.
                let _ = refusal.closed.send(());
            }
            () = wait_until(reopen_at) => match TcpListener::bind(addr).await {
                Ok(reopened) => {
                    listener = Some(reopened);
                    reopen_at = None;
                }
                Err(e) => {
                    eprintln!("re-binding {addr} failed, retrying: {e}");
                    reopen_at = Some(Instant::now() + Duration::from_millis(50));
                }
            },
        }
    }
    drop(listener);
    // Past the grace period the remaining requests are abandoned: exiting matters more.
    let _ = timeout(SHUTDOWN_GRACE, connections.shutdown()).await;
    Ok(())
}

/// Accepts the next connection, or waits forever while the socket is closed.
async fn accept(listener: Option<&TcpListener>) -> io::Result<TcpStream> {
    let Some(listener) = listener else {
        return pending().await;
    };
    let (stream, _) = listener.accept().await?;
    // Small request/response exchanges: do not let Nagle add latency.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

async fn next_refusal(refusals: &mut Option<mpsc::UnboundedReceiver<Refusal>>) -> Refusal {
    match refusals {
        Some(receiver) => match receiver.recv().await {
            Some(refusal) => refusal,
            None => pending().await,
        },
        None => pending().await,
    }
}

async fn wait_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => pending().await,
    }
}
