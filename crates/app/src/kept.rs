//! Results kept by what they were built from (a key naming the department's change sequence,
//! the day, the reader's scope): screens and reports asked again of an unchanged department
//! are answered without reading it again.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// The last `N` results built, by key; the oldest is let go first.
pub struct Kept<T, const N: usize> {
    kept: Mutex<VecDeque<(String, Arc<T>)>>,
    /// Held while one is built: a hundred screens asking at once for what is not kept wait for
    /// one build instead of each making its own.
    building: tokio::sync::Mutex<()>,
}

impl<T, const N: usize> Default for Kept<T, N> {
    fn default() -> Self {
        Kept {
            kept: Mutex::new(VecDeque::with_capacity(N)),
            building: tokio::sync::Mutex::new(()),
        }
    }
}

impl<T, const N: usize> Kept<T, N> {
    /// The result kept under `key`, else `build`'s, kept.
    pub(crate) async fn get_or_build<E, Build, Building>(
        &self,
        key: String,
        build: Build,
    ) -> Result<Arc<T>, E>
    where
        Build: FnOnce() -> Building,
        Building: Future<Output = Result<T, E>>,
    {
        if let Some(kept) = self.get(&key) {
            return Ok(kept);
        }
        let _building = self.building.lock().await;
        // Built by the one this waited for?
        if let Some(kept) = self.get(&key) {
            return Ok(kept);
        }
        let built = Arc::new(build().await?);
        self.keep(key, built.clone());
        Ok(built)
    }

    fn get(&self, key: &str) -> Option<Arc<T>> {
        let kept = self.kept.lock().ok()?;
        kept.iter()
            .find(|(k, _)| k == key)
            .map(|(_, value)| value.clone())
    }

    fn keep(&self, key: String, value: Arc<T>) {
        if let Ok(mut kept) = self.kept.lock() {
            kept.retain(|(k, _)| *k != key);
            if kept.len() >= N {
                kept.pop_front();
            }
            kept.push_back((key, value));
        }
    }
}
