//! One-time jobs: the replay stores.
