//! ring's system RNG behind the `rand_core` traits the `rsa` crate wants.

use ring::rand::{SecureRandom, SystemRandom};

#[derive(Debug)]
pub struct RingRng(SystemRandom);

impl RingRng {
    pub fn new() -> Self {
        Self(SystemRandom::new())
    }
}

#[derive(Debug)]
pub struct RngError;

impl std::fmt::Display for RngError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the system random generator failed")
    }
}

impl std::error::Error for RngError {}

impl rand_core::TryRng for RingRng {
    type Error = RngError;

    fn try_next_u32(&mut self) -> Result<u32, RngError> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, RngError> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), RngError> {
        self.0.fill(dst).map_err(|_| RngError)
    }
}

impl rand_core::TryCryptoRng for RingRng {}
