//! A minimal slab: stable `usize` keys, O(1) insert and remove, slots reused.
//!
//! Wait lists and child lists need to remove an arbitrary entry by a key the
//! owner kept, without shifting the others. This is all of it.

#[derive(Debug)]
enum Entry<T> {
    Occupied(T),
    Vacant(usize),
}

#[derive(Debug)]
pub(crate) struct Slab<T> {
    entries: Vec<Entry<T>>,
    /// Head of the free list; `entries.len()` when there is no free slot.
    next_free: usize,
    len: usize,
}

impl<T> Slab<T> {
    pub(crate) const fn new() -> Self {
        Slab {
            entries: Vec::new(),
            next_free: 0,
            len: 0,
        }
    }

    pub(crate) fn insert(&mut self, value: T) -> usize {
        let key = self.next_free;
        if key == self.entries.len() {
            self.entries.push(Entry::Occupied(value));
            self.next_free = self.entries.len();
        } else {
            match std::mem::replace(&mut self.entries[key], Entry::Occupied(value)) {
                Entry::Vacant(next) => self.next_free = next,
                Entry::Occupied(_) => unreachable!("slab free list points at an occupied slot"),
            }
        }
        self.len += 1;
        key
    }

    /// Removes the value at `key`; `None` when the slot is already vacant.
    pub(crate) fn remove(&mut self, key: usize) -> Option<T> {
        let slot = self.entries.get_mut(key)?;
        if matches!(slot, Entry::Vacant(_)) {
            return None;
        }
        let Entry::Occupied(value) = std::mem::replace(slot, Entry::Vacant(self.next_free)) else {
            unreachable!()
        };
        self.next_free = key;
        self.len -= 1;
        if self.len == 0 {
            // Drop the free list with the storage so a long-lived empty slab stays small.
            self.entries.clear();
            self.next_free = 0;
        }
        Some(value)
    }

    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        match self.entries.get_mut(key) {
            Some(Entry::Occupied(value)) => Some(value),
            _ => None,
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().filter_map(|entry| match entry {
            Entry::Occupied(value) => Some(value),
            Entry::Vacant(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Slab;

    #[test]
    fn keys_are_reused_after_remove() {
        let mut slab = Slab::new();
        let a = slab.insert("a");
        let b = slab.insert("b");
        assert_eq!(slab.remove(a), Some("a"));
        let c = slab.insert("c");
        assert_eq!(c, a);
        assert_eq!(slab.iter().count(), 2);
        assert_eq!(slab.iter().copied().collect::<Vec<_>>(), ["c", "b"]);
        assert_eq!(slab.remove(b), Some("b"));
        assert_eq!(slab.remove(b), None);
    }

    #[test]
    fn emptied_slab_releases_storage() {
        let mut slab = Slab::new();
        let keys: Vec<_> = (0..10).map(|i| slab.insert(i)).collect();
        for key in keys {
            slab.remove(key);
        }
        assert_eq!(slab.iter().count(), 0);
        assert_eq!(slab.insert(7), 0);
    }
}
