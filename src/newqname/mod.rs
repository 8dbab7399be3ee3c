//! New-qname detection (reference §8): names that are neither well-known nor
//! ignored and that this instance has never seen raise a `new_qname` event.
//!
//! - [`seen`]: the check-and-record — a bounded concurrent cache in front of
//!   an embedded persistent store (`fjall`) under `<data-dir>/seen-qnames`;
//!   exactly one caller reports a name as new, without one lock shared by all
//!   workers.
//! - [`event`]: the event JSON, byte-compatible with the reference.
//! - [`jws`]: flattened JWS (EdDSA, Ed25519) signing with a JWK key file.
//!
//! Status: detection, events and signing are here with their tests; the MQTT
//! publisher and the wiring into the workers come next (issue 5).

pub mod event;
pub mod jws;
pub mod seen;
