//! Watch ids of one stream, assigned as etcd does: a client may choose a
//! non-zero id that no watch of the stream uses; id 0 asks the server for
//! one, and the server hands out the lowest id at or above its counter that
//! is free (0, 1, 2 ... skipping ids clients chose), never going back.

use super::spec::CreateError;

/// Hands out the watch ids of one stream.
#[derive(Debug, Default)]
pub struct IdAllocator {
    /// The next id the server considers for an automatic assignment.
    next: i64,
}

impl IdAllocator {
    /// The id for a create request asking for `requested` (0: any), given
    /// which ids the stream's watches use.
    pub fn assign(
        &mut self,
        requested: i64,
        in_use: impl Fn(i64) -> bool,
    ) -> Result<i64, CreateError> {
        if requested != 0 {
            return if in_use(requested) {
                Err(CreateError::DuplicateId)
            } else {
                Ok(requested)
            };
        }
        while in_use(self.next) {
            self.next += 1;
        }
        let id = self.next;
        self.next += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn assign(ids: &mut IdAllocator, used: &mut BTreeSet<i64>, requested: i64) -> Option<i64> {
        let id = ids.assign(requested, |id| used.contains(&id)).ok()?;
        used.insert(id);
        Some(id)
    }

    #[test]
    fn automatic_ids_count_up_and_skip_chosen_ones() {
        let mut ids = IdAllocator::default();
        let mut used = BTreeSet::new();
        assert_eq!(assign(&mut ids, &mut used, 0), Some(0));
        assert_eq!(assign(&mut ids, &mut used, 2), Some(2));
        assert_eq!(assign(&mut ids, &mut used, 0), Some(1));
        assert_eq!(assign(&mut ids, &mut used, 0), Some(3), "2 is taken");
        // A cancelled automatic id is not handed out again.
        used.remove(&0);
        assert_eq!(assign(&mut ids, &mut used, 0), Some(4));
        // But a client may choose it (etcd allows any free non-zero id,
        // negative ones included).
        assert_eq!(assign(&mut ids, &mut used, -7), Some(-7));
    }

    #[test]
    fn a_chosen_id_in_use_is_refused() {
        let mut ids = IdAllocator::default();
        let mut used = BTreeSet::new();
        assert_eq!(assign(&mut ids, &mut used, 5), Some(5));
        assert_eq!(
            ids.assign(5, |id| used.contains(&id)),
            Err(CreateError::DuplicateId)
        );
        used.remove(&5);
        assert_eq!(assign(&mut ids, &mut used, 5), Some(5), "free again");
    }
}
