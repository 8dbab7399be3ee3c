//! New-qname detection (reference §8): names that are neither well-known nor
//! ignored and that this instance has never seen raise a `new_qname` event.
//!
//! - [`seen`]: the check-and-record — a bounded concurrent cache in front of
//!   the persistent fingerprint store ([`store`]) under `<data-dir>/seen`;
//!   exactly one caller reports a name as new, without one lock shared by all
//!   workers.
//! - [`fp_table`]: the flat fingerprint set of the store's in-memory part.
//! - [`event`]: the event JSON, byte-compatible with the reference.
//! - [`jws`]: flattened JWS (EdDSA, Ed25519) signing with a JWK key file.
//!
//! - [`mqtt`]: the publisher (MQTT v5, QoS 0, `events/up/<kid>/new_qname`).
//! - [`filequeue`]: the bounded on-disk queue in front of the broker.
//! - [`tls`]: TLS 1.3 with a reloadable client certificate.

pub mod event;
pub mod filequeue;
pub mod fp_table;
pub mod jws;
pub mod mqtt;
pub mod seen;
pub mod store;
pub mod tls;
