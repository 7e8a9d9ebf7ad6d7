//! The one TLS crypto provider every client in Gantry uses.
//!
//! rustls needs a process-wide provider; with two in the dependency graph it
//! refuses to pick and clients panic when built. Gantry uses ring everywhere.

/// Installs ring as the process-wide rustls provider; a second call (or one
/// after someone else installed it) is a no-op.
pub fn install_crypto() {
    // `Err` means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
