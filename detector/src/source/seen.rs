//! Each object read once per run: what a source has already read, by its content address (a
//! git object id, a layer digest), with what reading it gave that later readers still need.
//! Every source that meets the same object twice (packs that share objects, images that
//! share layers) asks here before reading it again.
use std::{
    collections::HashMap,
    hash::{BuildHasher, Hash},
    sync::{Mutex, PoisonError},
};

/// Objects already read, by id, each with what reading it gave (`()` when nothing).
#[derive(Debug)]
pub struct Seen<K, V = (), S = std::collections::hash_map::RandomState> {
    read: Mutex<HashMap<K, V, S>>,
}

impl<K, V, S: Default> Default for Seen<K, V, S> {
    fn default() -> Self {
        Seen {
            read: Mutex::new(HashMap::default()),
        }
    }
}

impl<K: Hash + Eq, V: Clone, S: BuildHasher> Seen<K, V, S> {
    /// What reading `id` gave, if it was read already.
    pub fn get(&self, id: &K) -> Option<V> {
        self.lock().get(id).cloned()
    }

    pub fn contains(&self, id: &K) -> bool {
        self.lock().contains_key(id)
    }

    /// How many objects were read.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, V, S>> {
        self.read.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remember that `id` was read and what it gave; false when it was read already (what
    /// it gave the first time stays).
    pub fn record(&self, id: K, gave: V) -> bool {
        let mut read = self.lock();
        if read.contains_key(&id) {
            return false;
        }
        read.insert(id, gave);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_is_read_once_and_keeps_what_it_gave() {
        let seen: Seen<&str, u32> = Seen::default();
        assert_eq!(seen.get(&"a"), None);
        assert!(seen.record("a", 1));
        assert!(!seen.record("a", 2));
        assert_eq!(seen.get(&"a"), Some(1));
    }
}
