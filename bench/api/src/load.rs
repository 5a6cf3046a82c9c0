//! A closed-loop HTTP/1.1 load generator: `conns` keep-alive connections, each with one request in flight,
//! random order ids or payees per request, latencies of every request in the measurement window.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode, body::Bytes, client::conn::http1};
use hyper_util::rt::TokioIo;
use rand::{Rng, SeedableRng, rngs::StdRng};

/// What each request asks for.
#[derive(Debug, Clone)]
pub enum Target {
    /// `GET /v1/orders/{id}`, id uniform in `1..=orders` (the generator's ids).
    Order { orders: u64 },
    /// `GET /v1/orders?payee=…&status=held&limit=…`, payee uniform over the list.
    List { payees: Arc<Vec<String>>, limit: u32 },
}

impl Target {
    pub fn path(&self, rng: &mut StdRng) -> String {
        match self {
            Self::Order { orders } => format!("/v1/orders/0x{:064x}", rng.random_range(1..=*orders)),
            Self::List { payees, limit } => format!(
                "/v1/orders?payee={}&status=held&limit={limit}",
                payees[rng.random_range(0..payees.len())]
            ),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Self::Order { .. } => "GET /v1/orders/{id}".into(),
            Self::List { limit, .. } => format!("GET /v1/orders?payee=…&status=held&limit={limit}"),
        }
    }
}

/// One keep-alive connection.
pub struct Conn {
    sender: http1::SendRequest<Empty<Bytes>>,
    host: String,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> eyre::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self { sender, host: addr.to_string() })
    }

    /// GET `path`; returns the status and the body's length (the body is read in full).
    pub async fn get(&mut self, path: &str) -> eyre::Result<(StatusCode, Bytes)> {
        let req = Request::get(path).header(hyper::header::HOST, &self.host).body(Empty::<Bytes>::new())?;
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// GET once on a fresh connection.
pub async fn get_once(addr: SocketAddr, path: &str) -> eyre::Result<(StatusCode, Bytes)> {
    Conn::connect(addr).await?.get(path).await
}

/// Results of one load run.
#[derive(Debug, Clone)]
pub struct LoadResult {
    pub requests: u64,
    pub errors: u64,
    pub bytes: u64,
    pub secs: f64,
    /// Latencies in microseconds, sorted.
    pub lat_us: Vec<u32>,
}

impl LoadResult {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.secs
    }

    /// Latency quantile in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        if self.lat_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.lat_us.len() as f64 - 1.0) * q).round() as usize;
        f64::from(self.lat_us[i]) / 1e3
    }
}

async fn worker(
    addr: SocketAddr,
    target: Arc<Target>,
    seed: u64,
    from: Instant,
    to: Instant,
) -> eyre::Result<(u64, u64, Vec<u32>)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut conn = Conn::connect(addr).await?;
    let mut lat = Vec::with_capacity(1 << 16);
    let (mut errors, mut bytes) = (0u64, 0u64);
    loop {
        let path = target.path(&mut rng);
        let t = Instant::now();
        if t >= to {
            break;
        }
        let (status, body) = conn.get(&path).await?;
        let us = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        if t >= from {
            lat.push(us);
            bytes += body.len() as u64;
            if status != StatusCode::OK {
                errors += 1;
            }
        }
    }
    Ok((errors, bytes, lat))
}

/// Run `conns` connections against `addr` for `warmup + duration`; measure the last `duration`. Runs on its
/// own Tokio runtime with `threads` threads (1: a current-thread runtime), on a separate OS thread.
pub fn run_load(
    addr: SocketAddr,
    target: Target,
    conns: usize,
    threads: usize,
    warmup: Duration,
    duration: Duration,
) -> eyre::Result<LoadResult> {
    std::thread::spawn(move || {
        let rt = if threads <= 1 {
            tokio::runtime::Builder::new_current_thread().enable_all().build()?
        } else {
            tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?
        };
        rt.block_on(async move {
            let target = Arc::new(target);
            let from = Instant::now() + warmup;
            let to = from + duration;
            let tasks: Vec<_> = (0..conns)
                .map(|i| tokio::spawn(worker(addr, target.clone(), 0x5eed + i as u64, from, to)))
                .collect();
            let mut out =
                LoadResult { requests: 0, errors: 0, bytes: 0, secs: duration.as_secs_f64(), lat_us: vec![] };
            for t in tasks {
                let (errors, bytes, lat) = t.await??;
                out.errors += errors;
                out.bytes += bytes;
                out.requests += lat.len() as u64;
                out.lat_us.extend(lat);
            }
            out.lat_us.sort_unstable();
            Ok(out)
        })
    })
    .join()
    .map_err(|_| eyre::eyre!("load thread panicked"))?
}
