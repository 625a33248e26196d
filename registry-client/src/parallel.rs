//! Bounded parallelism for blob transfers.

use crate::error::Error;
use std::future::Future;
use tokio::task::JoinSet;

/// Runs `work` on every item, at most `limit` at a time, each on its own task
/// (so hashing uses every core). The first error aborts the tasks still running,
/// which discards their partial writes.
pub(crate) async fn run_bounded<T, R, F, Fut>(
    items: Vec<T>,
    limit: usize,
    work: F,
) -> Result<Vec<R>, Error>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<R, Error>> + Send + 'static,
    R: Send + 'static,
{
    let mut pending = items.into_iter();
    let mut running = JoinSet::new();
    for item in pending.by_ref().take(limit.max(1)) {
        running.spawn(work(item));
    }
    let mut results = Vec::new();
    while let Some(joined) = running.join_next().await {
        let result =
            joined.map_err(|err| Error::Internal(format!("a transfer task failed: {err}")))??;
        results.push(result);
        if let Some(item) = pending.next() {
            running.spawn(work(item));
        }
    }
    Ok(results)
}
