//! Transaction ids: random UUID v4 from a PRNG seeded once, so no host call per event.

use uuid::Uuid;

pub struct IdGen(fastrand::Rng);

impl IdGen {
    /// `seed` should come from the host's entropy; two shippers with equal seeds would collide.
    pub fn new(seed: u64) -> Self {
        IdGen(fastrand::Rng::with_seed(seed))
    }

    pub fn next_uuid(&mut self) -> Uuid {
        uuid::Builder::from_random_bytes(self.0.u128(..).to_le_bytes()).into_uuid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_v4_and_distinct() {
        let mut g = IdGen::new(7);
        let ids: HashSet<Uuid> = (0..10_000).map(|_| g.next_uuid()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|u| u.get_version_num() == 4));
    }
}
