//! The load driver: run an operation sequentially or from N concurrent clients, keep every
//! latency, and summarise (median, p99, throughput). Loops are bounded by count and by time.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

/// Latencies of one measurement, in the order they were taken.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    pub ms: Vec<f64>,
    /// Wall time of the whole measurement (for throughput).
    pub wall: Duration,
}

impl Samples {
    pub fn from_ms(ms: Vec<f64>) -> Self {
        Self {
            ms,
            wall: Duration::ZERO,
        }
    }

    /// The `q`-quantile (0..=1) in milliseconds, nearest rank.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.ms.is_empty() {
            return f64::NAN;
        }
        let mut v = self.ms.clone();
        v.sort_by(f64::total_cmp);
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }

    pub fn p50(&self) -> f64 {
        self.quantile(0.5)
    }

    pub fn p99(&self) -> f64 {
        self.quantile(0.99)
    }

    /// The worst sample.
    pub fn max(&self) -> f64 {
        self.ms.iter().copied().fold(0.0, f64::max)
    }

    pub fn len(&self) -> usize {
        self.ms.len()
    }

    /// Operations per second over the measurement's wall time.
    pub fn per_sec(&self) -> f64 {
        if self.wall.is_zero() {
            return f64::NAN;
        }
        self.ms.len() as f64 / self.wall.as_secs_f64()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Times `op(i)` for `i in 0..n`, one after the other.
pub async fn sequential<F, Fut>(n: usize, mut op: F) -> anyhow::Result<Samples>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut out = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        op(i).await?;
        out.push(ms(t.elapsed()));
    }
    Ok(Samples {
        ms: out,
        wall: start.elapsed(),
    })
}

/// `workers` concurrent clients share the indices `0..total`; each times its own calls. Stops
/// at `total` operations or after `limit`, whichever comes first.
pub async fn concurrent<F, Fut>(
    workers: usize,
    total: usize,
    limit: Duration,
    op: F,
) -> anyhow::Result<Samples>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (op, next) = (op.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = vec![];
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || start.elapsed() >= limit {
                    return Ok::<_, anyhow::Error>(mine);
                }
                let t = Instant::now();
                op(i).await?;
                mine.push(ms(t.elapsed()));
            }
        }));
    }
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(Samples {
        ms: all,
        wall: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let s = Samples::from_ms((1..=100).map(f64::from).collect());
        assert_eq!(s.p50(), 50.0);
        assert_eq!(s.p99(), 99.0);
        assert_eq!(s.quantile(1.0), 100.0);
        assert!(Samples::default().p50().is_nan());
    }
}
