//! What several integration test files share (each includes it with
//! `mod common;`).

pub mod certs;
