//! An ordered map kept as two sorted vectors: its keys, and their values at
//! the same indices.
//!
//! The guest's tables (ports, xenstore requests and watches, address
//! spaces and their pages, vchans, page tables, RPCs in flight) hold a few
//! to a few thousand entries each. `alloc`'s `BTreeMap` serves them, but
//! every key and value type instantiates its own copy of the tree's code
//! (about 4 KiB each, and the guest image has a budget of 256 KiB). Here
//! the search runs over the keys alone, so it is one function per key type
//! whatever the values; inserting and removing move the tail of two
//! vectors. A lookup is a binary search over contiguous keys, as fast as
//! the tree's or faster at these sizes; an insertion or removal in the
//! middle costs a move of the entries after it, which at these sizes is a
//! few hundred bytes (and appending in key order, as an image is mapped,
//! moves nothing).
//!
//! The interface is the part of `BTreeMap`'s the kernel uses, with the same
//! meaning: iteration is in key order.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

use alloc::vec::Vec;

/// A map from `K` to `V`, in key order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VecMap<K, V> {
    /// Sorted, no two equal.
    keys: Vec<K>,
    /// `values[i]` is the value of `keys[i]`.
    values: Vec<V>,
}

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> VecMap<K, V> {
    /// An empty map (allocates nothing until the first insertion).
    pub const fn new() -> Self {
        Self {
            keys: Vec::new(),
            values: Vec::new(),
        }
    }

    /// How many entries the map holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the map holds no entry.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The entries, in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator {
        self.keys.iter().zip(self.values.iter())
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator {
        self.keys.iter()
    }

    /// The values, in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.values.iter()
    }

    /// The keys, in order, taking the map.
    pub fn into_keys(self) -> alloc::vec::IntoIter<K> {
        self.keys.into_iter()
    }

    /// The values, in key order, taking the map.
    pub fn into_values(self) -> alloc::vec::IntoIter<V> {
        self.values.into_iter()
    }
}

impl<K: Ord, V> VecMap<K, V> {
    /// Where `key` is (`Ok`) or would go (`Err`).
    fn position(&self, key: &K) -> Result<usize, usize> {
        self.keys.binary_search(key)
    }

    /// Whether the map holds `key`.
    pub fn contains_key(&self, key: &K) -> bool {
        self.position(key).is_ok()
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        // `values` has an entry at every key's index: `get` only spares
        // the image a bounds-check panic.
        self.position(key).ok().and_then(|i| self.values.get(i))
    }

    /// The value of `key`, writable.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.position(key).ok().and_then(|i| self.values.get_mut(i))
    }

    /// Sets the value of `key`; returns the one it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.position(&key) {
            Ok(i) => Some(core::mem::replace(&mut self.values[i], value)),
            Err(i) => {
                self.keys.insert(i, key);
                self.values.insert(i, value);
                None
            }
        }
    }

    /// Takes `key` out; returns its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let i = self.position(key).ok()?;
        self.keys.remove(i);
        Some(self.values.remove(i))
    }
}

impl<K, V> IntoIterator for VecMap<K, V> {
    type Item = (K, V);
    type IntoIter = core::iter::Zip<alloc::vec::IntoIter<K>, alloc::vec::IntoIter<V>>;

    /// The entries, in key order, taking the map.
    fn into_iter(self) -> Self::IntoIter {
        self.keys.into_iter().zip(self.values)
    }
}
