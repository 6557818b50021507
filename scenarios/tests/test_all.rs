//! Chaos against the in-memory model (no Docker): faults, heals and the recovery bookkeeping
//! are the product code; the platform's reaction is [`paas_scenarios::memory::MemoryPlatform`].

mod model;
